// Package openaiup is the OpenAI upstream engine: it runs text and embedding jobs on any server
// that speaks the OpenAI API — vLLM, llama.cpp's llama-server, TGI, SGLang, Ollama, LocalAI, or
// another neovratz. Text streams over server-sent events, so deltas reach the job's event log as
// the upstream produces them. At most Slots requests are in flight at once: the upstream batches
// those, and the worker's slot accounting keeps the rest queued where other workers can take them.
package openaiup

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures an upstream.
type Config struct {
	// BaseURL is the upstream's OpenAI API root, the part before /chat/completions:
	// "http://127.0.0.1:8000/v1".
	BaseURL string
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// Model is the model name the upstream knows; empty: the job's model name.
	Model string
	// Slots is the most requests in flight at once. Default 1.
	Slots int
	// HealthURL is what the health check GETs; empty: BaseURL + "/models". llama-server and
	// vLLM also serve /health at their root.
	HealthURL string
	// StallTimeout ends a request whose upstream sends nothing for this long — no response
	// headers, no stream data — as a retryable failure. The upstream's own queueing counts, so
	// keep it generous. Default 5m.
	StallTimeout time.Duration
	// HTTPClient makes the requests; nil: a client with no overall timeout (streams may be long;
	// StallTimeout bounds silence instead).
	HTTPClient *http.Client
}

// Engine is an OpenAI upstream. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	base   string
	client *http.Client
	slots  chan struct{}
}

// New checks cfg and returns the engine.
func New(cfg Config) (*Engine, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai upstream: base url %q: want http(s)://host[:port]/path", cfg.BaseURL)
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 5 * time.Minute
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.HealthURL == "" {
		cfg.HealthURL = base + "/models"
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	return &Engine{cfg: cfg, base: base, client: client, slots: make(chan struct{}, cfg.Slots)}, nil
}

// acquire waits for a free slot; the returned function gives it back.
func (e *Engine) acquire(ctx context.Context) (func(), error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (e *Engine) model(jobModel string) string {
	if e.cfg.Model != "" {
		return e.cfg.Model
	}
	return jobModel
}

// Health reports whether the upstream answers its health URL with a 2xx status.
func (e *Engine) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.cfg.HealthURL, nil)
	if err != nil {
		return err
	}
	e.authorize(req)
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upstream health: %s answered %s", e.cfg.HealthURL, resp.Status)
	}
	return nil
}

func (e *Engine) authorize(req *http.Request) {
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
}

// errStalled is the cause of a request ended by StallTimeout.
var errStalled = errors.New("upstream sent nothing for too long")
