package openaiup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/worker"
)

// call is one request to the upstream: its context ends when the caller's does or when the
// upstream stalls for StallTimeout; every read of the body counts as progress.
type call struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	timer  *time.Timer
	stall  time.Duration
}

func (e *Engine) newCall(ctx context.Context) *call {
	c := &call{stall: e.cfg.StallTimeout}
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	c.timer = time.AfterFunc(c.stall, func() { c.cancel(errStalled) })
	return c
}

// progress pushes the stall deadline back.
func (c *call) progress() {
	c.mu.Lock()
	c.timer.Reset(c.stall)
	c.mu.Unlock()
}

func (c *call) done() {
	c.timer.Stop()
	c.cancel(nil)
}

// err turns an error of the request into what the engine returns: the caller's own cancellation
// as it is, anything else (a refused connection, a reset, a stall, a broken stream) as retryable:
// the upstream may be back on the next attempt.
func (c *call) err(parent context.Context, err error) error {
	if parent.Err() != nil {
		return context.Cause(parent)
	}
	if errors.Is(context.Cause(c.ctx), errStalled) {
		return worker.Retryable(errStalled)
	}
	return worker.Retryable(err)
}

// post sends body as JSON to path and returns the response of a 2xx status; any other status is
// read into a *StatusError.
func (e *Engine) post(c *call, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, e.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	e.authorize(req)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post %s: %w", path, err)
	}
	c.progress()
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	resp.Body = &progressReader{r: resp.Body, c: c}
	return resp, nil
}

// progressReader reports every successful read to its call.
type progressReader struct {
	r io.ReadCloser
	c *call
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.c.progress()
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }
