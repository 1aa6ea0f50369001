// Package imageup is the image upstream engine: it runs image jobs on a server that generates
// images — an AUTOMATIC1111-compatible API (AUTOMATIC1111's web UI, Forge, stable-diffusion.cpp's
// server: POST /sdapi/v1/txt2img) or an OpenAI-compatible images API
// (POST /v1/images/generations: LocalAI, or another neovratz).
//
// A1111 reports progress only through GET /sdapi/v1/progress, so while a txt2img request runs
// the engine polls that endpoint: the polling is inherent to that API (it has no stream). The
// OpenAI images API reports no progress at all.
package imageup

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // upstreams that answer JPEG are converted to PNG
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// The APIs an upstream may speak.
const (
	APIA1111  = "a1111"
	APIOpenAI = "openai"
)

// Config configures an image upstream.
type Config struct {
	// API is APIA1111 or APIOpenAI.
	API string
	// BaseURL is the server's root for A1111 ("http://127.0.0.1:7860") or its OpenAI API root
	// ("http://127.0.0.1:8080/v1").
	BaseURL string
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// Model: for A1111, the checkpoint to use (sent as override_settings.sd_model_checkpoint;
	// empty: whatever the server has loaded); for OpenAI, the model name (empty: the job's).
	Model string
	// Slots is the most requests in flight. Default 1: an A1111 server runs one job at a time,
	// and its progress endpoint describes only that one.
	Slots int
	// ProgressInterval is how often A1111's progress is polled. Default 500ms.
	ProgressInterval time.Duration
	// Timeout bounds one generation. Default 10m.
	Timeout time.Duration
	// HTTPClient makes the requests; nil: a client without an overall timeout (Timeout applies).
	HTTPClient *http.Client
}

// Engine is an image upstream. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	base   string
	client *http.Client
	slots  chan struct{}
}

// New checks cfg and returns the engine.
func New(cfg Config) (*Engine, error) {
	if cfg.API != APIA1111 && cfg.API != APIOpenAI {
		return nil, fmt.Errorf("image upstream: api must be %s or %s (got %q)", APIA1111, APIOpenAI, cfg.API)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("image upstream: base url %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	return &Engine{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), client: client, slots: make(chan struct{}, cfg.Slots)}, nil
}

// GenerateImage runs req on the upstream.
func (e *Engine) GenerateImage(ctx context.Context, req inference.ImageRequest, progress func(inference.ImageProgress) error) (inference.ImageResult, error) {
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		return inference.ImageResult{}, context.Cause(ctx)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	var res inference.ImageResult
	var err error
	if e.cfg.API == APIA1111 {
		res, err = e.a1111(ctx, req, progress)
	} else {
		res, err = e.openaiImages(ctx, req)
	}
	if err != nil {
		return inference.ImageResult{}, classify(parent, ctx, err)
	}
	return res, nil
}

// Health reports whether the upstream answers: A1111's progress endpoint, or the OpenAI API's
// model list.
func (e *Engine) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := "/models"
	if e.cfg.API == APIA1111 {
		path = "/sdapi/v1/progress?skip_current_image=true"
	}
	resp, err := e.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return fmt.Errorf("image upstream health: %w", err)
	}
	resp.Body.Close()
	return nil
}

// do sends a request and returns a 2xx response; other statuses become a *StatusError.
func (e *Engine) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// StatusError is an upstream answer with a non-2xx status. 400 and 422 (A1111's validation
// errors) blame the request; 408, 429 and 5xx are worth a retry; others (401, 403, 404: the
// worker's configuration) fail the job without a retry.
type StatusError struct {
	Status  int
	Message string
	// Request is set when the answer blames the request whatever its status: A1111 answers an
	// unknown sampler with 404 "Sampler not found".
	Request bool
}

func (e *StatusError) Error() string {
	if e.badRequest() {
		return e.Message
	}
	return fmt.Sprintf("image upstream answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func (e *StatusError) badRequest() bool {
	return e.Request || e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity
}

// Is makes errors.Is(err, inference.ErrBadRequest) true for statuses that blame the request.
func (e *StatusError) Is(target error) bool {
	return target == inference.ErrBadRequest && e.badRequest()
}

// Retryable reports whether another attempt may succeed.
func (e *StatusError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &StatusError{Status: resp.StatusCode}
	var body struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"` // A1111 (FastAPI)
		Errors string          `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil {
		var eb openai.ErrorBody
		var s string
		switch {
		case json.Unmarshal(body.Error, &eb) == nil && eb.Message != "":
			e.Message = eb.Message
		case json.Unmarshal(body.Detail, &s) == nil && s != "":
			e.Message = s
		case len(body.Detail) > 0 && body.Detail[0] == '[':
			e.Message = validationMessage(body.Detail)
		case body.Errors != "":
			e.Message = body.Errors
		case json.Unmarshal(body.Error, &s) == nil && s != "":
			e.Message = s
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if strings.HasPrefix(e.Message, "Sampler not found") {
		e.Request = true
		e.Message = "sampler: not found on the upstream"
	}
	return e
}

// validationMessage reads FastAPI's [{"loc": [...], "msg": "..."}].
func validationMessage(raw json.RawMessage) string {
	var items []struct {
		Loc []any  `json:"loc"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return string(raw)
	}
	var parts []string
	for _, it := range items {
		loc := make([]string, 0, len(it.Loc))
		for _, l := range it.Loc {
			if s := fmt.Sprint(l); s != "body" {
				loc = append(loc, s)
			}
		}
		parts = append(parts, strings.Join(loc, ".")+": "+it.Msg)
	}
	return strings.Join(parts, "; ")
}

// classify returns the caller's cancellation as it is and makes every failure that is not the
// upstream's own answer retryable: a refused connection, a timeout, a reset.
func classify(parent, ctx context.Context, err error) error {
	if parent.Err() != nil {
		return context.Cause(parent)
	}
	var se *StatusError
	if errors.As(err, &se) || errors.Is(err, inference.ErrBadRequest) || errors.Is(err, errBadImage) {
		return err
	}
	return worker.Retryable(err)
}

// errBadImage is an image the upstream sent that is neither PNG nor JPEG.
var errBadImage = errors.New("image upstream sent an image that is neither PNG nor JPEG")

// decodeImage turns a base64 image (plain or a data URL) into PNG bytes.
func decodeImage(s string) ([]byte, error) {
	if i := strings.Index(s, ";base64,"); strings.HasPrefix(s, "data:") && i >= 0 {
		s = s[i+len(";base64,"):]
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, worker.Retryablef("image upstream sent bad base64: %w", err)
	}
	if bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		return b, nil
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, errBadImage
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
