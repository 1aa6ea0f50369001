// Package client is the command line's client of a neovratz server: streaming chat and image
// generation with progress. Chat and the plain images API go through the official OpenAI Go
// client, since neovratz speaks that protocol; image progress comes from neovratz's own jobs API
// (POST /v1/jobs, then the job's server-sent events).
//
// Every error the server sends is returned as an *Error holding the server's message, ready to
// show a person; a server that cannot be reached gives an error wrapping ErrUnreachable.
package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server's root, such as http://127.0.0.1:8080 (the OpenAI API is under /v1).
	BaseURL string
	// APIKey is sent as a bearer token; empty sends none (a server run with --auth=false).
	APIKey string
	// HTTPClient makes the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// MaxRetries is how often a request the server refused for now (429, 503) is retried, as the
	// OpenAI client does it (honouring Retry-After).
	MaxRetries int
}

// Client talks to one neovratz server.
type Client struct {
	cfg    Config
	base   *url.URL
	http   *http.Client
	chat   openai.ChatCompletionService
	images openai.ImageService
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("server address %q is not an http:// or https:// URL", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	// The services are built from explicit options rather than openai.NewClient, which would
	// also read OPENAI_API_KEY and OPENAI_BASE_URL from the environment and send an OpenAI key
	// to a neovratz server.
	opts := []option.RequestOption{
		option.WithBaseURL(base.String() + "/v1/"),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(cfg.MaxRetries),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	return &Client{cfg: cfg, base: base, http: cfg.HTTPClient,
		chat: openai.NewChatCompletionService(opts...), images: openai.NewImageService(opts...)}, nil
}

// ErrUnreachable matches the error of a request that found no server at the address.
var ErrUnreachable = errors.New("cannot reach the server")

// Error is an error response of the server.
type Error struct {
	Status  int    // HTTP status; 0 for an error reported inside a stream
	Code    string // the server's error code, such as model_not_found
	Message string // the server's message, meant for a person
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// errorBody is the OpenAI error envelope neovratz answers with.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// parseError turns an error response into an *Error with the server's message, or with the
// body's first line when it is not the usual envelope (a proxy's error page).
func parseError(status int, body []byte) *Error {
	e := &Error{Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		e.Message = eb.Error.Message
		if s, ok := eb.Error.Code.(string); ok {
			e.Code = s
		}
		return e
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	if line == "" {
		line = strings.ToLower(http.StatusText(status))
	}
	e.Message = line
	return e
}

// responseError reads an error response's body into an *Error.
func responseError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return parseError(resp.StatusCode, body)
}

// convert turns what the OpenAI client and net/http return into this package's errors.
func (c *Client) convert(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		e := parseError(apiErr.StatusCode, []byte(apiErr.RawJSON()))
		if apiErr.Message != "" {
			e.Message = apiErr.Message
		}
		if apiErr.Code != "" {
			e.Code = apiErr.Code
		}
		if e.Message == "" {
			e.Message = strings.ToLower(http.StatusText(apiErr.StatusCode))
		}
		return e
	}
	var streamErr *ssestream.StreamError
	if errors.As(err, &streamErr) {
		// An error event inside a stream: {"error": {"message": …}}.
		e := parseError(0, streamErr.Event.Data)
		e.Status = 0
		return e
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.base, opErr.Err)
	}
	return err
}
