package brokerhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// callTimeout bounds a call that is not a long poll; a long poll gets its wait on top.
const callTimeout = 30 * time.Second

// Client is the worker's side: it satisfies the worker's broker interface (and its optional
// EventBatcher and WorkerLister) through a remote API's worker endpoints.
type Client struct {
	base   string
	token  string
	client *http.Client

	mu         sync.Mutex
	registered map[string]bool // worker ids registered through this client, for Workers
}

// NewClient returns a client of the API at baseURL (https://api.example.com) authenticating with
// token, a key with the worker scope. httpClient nil means a client with no overall timeout:
// calls carry their own deadlines, as long polls outlast any sensible fixed timeout.
func NewClient(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, client: httpClient, registered: map[string]bool{}}
}

// ErrUnauthorized matches the errors of calls the API refused for the token: missing, wrong,
// revoked or expired (401), or a key without the worker scope (403).
var ErrUnauthorized = errors.New("worker token rejected")

// AuthError is a call the API refused for the token. It is fatal to a worker: retrying with the
// same token cannot help.
type AuthError struct {
	Status  int
	Message string // the API's explanation
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("worker token rejected by the API (%d): %s", e.Status, e.Message)
}

// Is makes errors.Is(err, ErrUnauthorized) true.
func (e *AuthError) Is(target error) bool { return target == ErrUnauthorized }

// Fatal tells the worker not to retry.
func (e *AuthError) Fatal() bool { return true }

// StatusError is any other answer that is not a success, with the API's message.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("worker api answered %d: %s", e.Status, e.Message)
}

// do sends body (nil: none) and decodes a 2xx answer into out (nil: ignore it). extra is added
// to callTimeout for long polls.
func (c *Client) do(ctx context.Context, method, path string, body, out any, extra time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout+extra)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "neovratz-worker")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: read answer: %w", method, path, err)
		}
		return nil
	}
	return responseError(resp)
}

// responseError maps an error answer back to the broker's errors.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er errorResponse
	_ = json.Unmarshal(b, &er)
	msg := er.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(b))
		if msg == "" {
			msg = resp.Status
		}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &AuthError{Status: resp.StatusCode, Message: msg}
	}
	var sentinel error
	switch er.Error.Code {
	case codeNotFound:
		sentinel = broker.ErrNotFound
	case codeLeaseLost:
		sentinel = broker.ErrLeaseLost
	case codeFinished:
		sentinel = broker.ErrFinished
	case codeCanceled:
		sentinel = broker.ErrCanceled
	case codeClosed:
		sentinel = broker.ErrClosed
	}
	se := &StatusError{Status: resp.StatusCode, Code: er.Error.Code, Message: msg}
	var err error = se
	if sentinel != nil {
		err = fmt.Errorf("%w: %w", sentinel, se)
	}
	if er.Written != nil {
		err = &writtenError{written: *er.Written, err: err}
	}
	return err
}

// writtenError is a batch of events that failed after some were appended.
type writtenError struct {
	written int
	err     error
}

func (e *writtenError) Error() string { return e.err.Error() }
func (e *writtenError) Unwrap() error { return e.err }

// RegisterWorker adds or replaces the worker in the API's registry.
func (c *Client) RegisterWorker(ctx context.Context, w broker.WorkerInfo) error {
	if err := c.do(ctx, http.MethodPost, Prefix+"register", w, nil, 0); err != nil {
		return err
	}
	c.mu.Lock()
	c.registered[w.ID] = true
	c.mu.Unlock()
	return nil
}

// HeartbeatWorker marks the worker alive; broker.ErrNotFound when it must register again.
func (c *Client) HeartbeatWorker(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, Prefix+"heartbeat", workerIDRequest{WorkerID: id}, nil, 0)
}

// DeregisterWorker removes the worker from the registry.
func (c *Client) DeregisterWorker(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodPost, Prefix+"deregister", workerIDRequest{WorkerID: id}, nil, 0)
	if err == nil {
		c.mu.Lock()
		delete(c.registered, id)
		c.mu.Unlock()
	}
	return err
}

// Workers returns the registry entries of the workers registered through this client (a worker
// key sees no others); the worker reads its own to learn of a drain request.
func (c *Client) Workers(ctx context.Context) ([]broker.WorkerInfo, error) {
	c.mu.Lock()
	ids := make([]string, 0, len(c.registered))
	for id := range c.registered {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	var out []broker.WorkerInfo
	for _, id := range ids {
		var info broker.WorkerInfo
		err := c.do(ctx, http.MethodGet, Prefix+"workers/"+url.PathEscape(id), nil, &info, 0)
		switch {
		case errors.Is(err, broker.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out = append(out, info)
		}
	}
	return out, nil
}

// Reserve long-polls the API until it hands out at least one job or ctx ends.
func (c *Client) Reserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error) {
	for {
		wait := maxWait - time.Second // answered by the server before the call's own timeout
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		var resp reserveResponse
		err := c.do(ctx, http.MethodPost, Prefix+"reserve",
			reserveRequest{WorkerID: workerID, Models: models, N: n, WaitMS: max(wait.Milliseconds(), 1)}, &resp, wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if len(resp.Leases) > 0 {
			out := make([]*broker.Lease, len(resp.Leases))
			for i, l := range resp.Leases {
				out[i] = l.lease()
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func jobPath(l *broker.Lease, op string) string {
	return Prefix + "jobs/" + url.PathEscape(l.Job.ID) + "/" + op
}

// ExtendLease renews the lease and updates l.Until.
func (c *Client) ExtendLease(ctx context.Context, l *broker.Lease) error {
	var resp extendResponse
	if err := c.do(ctx, http.MethodPost, jobPath(l, "extend"), leaseRequest{Lease: toWire(l, false)}, &resp, 0); err != nil {
		return err
	}
	l.Until = resp.Until
	return nil
}

// Release hands the job back to its queue.
func (c *Client) Release(ctx context.Context, l *broker.Lease) error {
	return c.do(ctx, http.MethodPost, jobPath(l, "release"), leaseRequest{Lease: toWire(l, false)}, nil, 0)
}

// Complete finishes the job with its result.
func (c *Client) Complete(ctx context.Context, l *broker.Lease, result json.RawMessage) error {
	return c.do(ctx, http.MethodPost, jobPath(l, "complete"), completeRequest{Lease: toWire(l, false), Result: result}, nil, 0)
}

// Fail ends the attempt with failure.
func (c *Client) Fail(ctx context.Context, l *broker.Lease, failure job.Error) error {
	return c.do(ctx, http.MethodPost, jobPath(l, "fail"), failRequest{Lease: toWire(l, false), Error: failure}, nil, 0)
}

// AppendEvent appends one event to the job's log and returns its id.
func (c *Client) AppendEvent(ctx context.Context, l *broker.Lease, ev broker.Event) (string, error) {
	var resp appendResponse
	if err := c.do(ctx, http.MethodPost, jobPath(l, "events"), appendRequest{Lease: toWire(l, false), Events: []broker.Event{ev}}, &resp, 0); err != nil {
		return "", err
	}
	if len(resp.IDs) != 1 {
		return "", fmt.Errorf("append event: the API answered %d ids for 1 event", len(resp.IDs))
	}
	return resp.IDs[0], nil
}

// AppendEvents appends evs in one round trip and returns how many were appended.
func (c *Client) AppendEvents(ctx context.Context, l *broker.Lease, evs []broker.Event) (int, error) {
	var resp appendResponse
	err := c.do(ctx, http.MethodPost, jobPath(l, "events"), appendRequest{Lease: toWire(l, false), Events: evs}, &resp, 0)
	if err != nil {
		var we *writtenError
		if errors.As(err, &we) {
			return we.written, err
		}
		return 0, err
	}
	return len(resp.IDs), nil
}

// Events reads the job's log after the event after, waiting up to wait (capped by the server)
// when there is none.
func (c *Client) Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(min(limit, 1000)))
	}
	if wait > 0 {
		wait = min(wait, maxWait)
		q.Set("wait_ms", strconv.FormatInt(max(wait.Milliseconds(), 1), 10))
	}
	path := Prefix + "jobs/" + url.PathEscape(id) + "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp eventsResponse
	if err := c.do(ctx, http.MethodGet, path, nil, &resp, wait); err != nil {
		return nil, err
	}
	return resp.Events, nil
}
