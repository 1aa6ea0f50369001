package brokerhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Broker is what the handler needs of a broker: the worker's operations.
type Broker interface {
	Reserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error)
	ExtendLease(ctx context.Context, l *broker.Lease) error
	Release(ctx context.Context, l *broker.Lease) error
	Complete(ctx context.Context, l *broker.Lease, result json.RawMessage) error
	Fail(ctx context.Context, l *broker.Lease, failure job.Error) error
	AppendEvent(ctx context.Context, l *broker.Lease, ev broker.Event) (string, error)
	Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error)
	RegisterWorker(ctx context.Context, w broker.WorkerInfo) error
	HeartbeatWorker(ctx context.Context, id string) error
	DeregisterWorker(ctx context.Context, id string) error
	Workers(ctx context.Context) ([]broker.WorkerInfo, error)
}

// Body limits. A job's result (a batch of PNGs) is the largest body; the rest are small.
const (
	maxResultBody = 256 << 20
	maxEventsBody = 16 << 20
	maxSmallBody  = 1 << 20
	maxReserveN   = 64
	maxEventBatch = 1000
)

// handler serves the routes listed in the package documentation.
type handler struct {
	b   Broker
	log *slog.Logger
}

// NewHandler returns the server side of workers over HTTP, serving the routes in the package
// documentation under Prefix. It does no authentication: mount it behind a check for a key
// with the worker scope.
func NewHandler(b Broker, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: logger}
	mux := http.NewServeMux()
	route := func(pattern string, limit int64, fn func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			if err := fn(w, r); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	route("POST "+Prefix+"register", maxSmallBody, h.register)
	route("POST "+Prefix+"heartbeat", maxSmallBody, h.heartbeat)
	route("POST "+Prefix+"deregister", maxSmallBody, h.deregister)
	route("GET "+Prefix+"workers/{id}", 0, h.worker)
	route("POST "+Prefix+"reserve", maxSmallBody, h.reserve)
	route("POST "+Prefix+"jobs/{id}/extend", maxSmallBody, h.extend)
	route("POST "+Prefix+"jobs/{id}/events", maxEventsBody, h.appendEvents)
	route("POST "+Prefix+"jobs/{id}/complete", maxResultBody, h.complete)
	route("POST "+Prefix+"jobs/{id}/fail", maxSmallBody, h.fail)
	route("POST "+Prefix+"jobs/{id}/release", maxSmallBody, h.release)
	route("GET "+Prefix+"jobs/{id}/events", 0, h.events)
	return mux
}

// inputError is a request the handler cannot read: 400, with a message for the client.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badInput("request body is larger than %d bytes", mbe.Limit)
		}
		return badInput("request body is not valid JSON: %v", err)
	}
	return nil
}

// leaseFor decodes a request that carries a lease and checks that the lease is for the job in
// the path.
func leaseFor(r *http.Request, v any, l *Lease) error {
	if err := decode(r, v); err != nil {
		return err
	}
	if l.Job.ID == "" || l.Job.ID != r.PathValue("id") {
		return badInput("lease.job.id must be the job in the path")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps an error to its status and code; a broker failure's text goes only to the log.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg, typ := http.StatusInternalServerError, codeInternal, "internal error", "server_error"
	var in *inputError
	switch {
	case errors.As(err, &in):
		status, code, msg, typ = http.StatusBadRequest, codeBadInput, in.msg, "invalid_request_error"
	case errors.Is(err, broker.ErrNotFound):
		status, code, msg, typ = http.StatusNotFound, codeNotFound, "not found", "not_found_error"
	case errors.Is(err, broker.ErrLeaseLost):
		status, code, msg, typ = http.StatusConflict, codeLeaseLost, "the lease is lost: the job was handed to another worker", "invalid_request_error"
	case errors.Is(err, broker.ErrFinished):
		status, code, msg, typ = http.StatusConflict, codeFinished, "the job has already finished", "invalid_request_error"
	case errors.Is(err, broker.ErrCanceled):
		status, code, msg, typ = http.StatusGone, codeCanceled, "the job was canceled", "invalid_request_error"
	case errors.Is(err, broker.ErrClosed):
		status, code, msg, typ = http.StatusServiceUnavailable, codeClosed, "the broker is shutting down", "service_unavailable_error"
	default:
		if r.Context().Err() != nil {
			return // the worker went away; nobody reads the answer
		}
		h.log.Error("worker api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	resp := errorResponse{Error: errorBody{Message: msg, Type: typ, Code: code}}
	var pe *partialError
	if errors.As(err, &pe) {
		resp.Written = &pe.written
	}
	writeJSON(w, status, resp)
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) error {
	var info broker.WorkerInfo
	if err := decode(r, &info); err != nil {
		return err
	}
	if info.ID == "" {
		return badInput("id is required")
	}
	if err := h.b.RegisterWorker(r.Context(), info); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) workerID(r *http.Request) (string, error) {
	var req workerIDRequest
	if err := decode(r, &req); err != nil {
		return "", err
	}
	if req.WorkerID == "" {
		return "", badInput("worker_id is required")
	}
	return req.WorkerID, nil
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id, err := h.workerID(r)
	if err != nil {
		return err
	}
	if err := h.b.HeartbeatWorker(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deregister(w http.ResponseWriter, r *http.Request) error {
	id, err := h.workerID(r)
	if err != nil {
		return err
	}
	if err := h.b.DeregisterWorker(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) worker(w http.ResponseWriter, r *http.Request) error {
	ws, err := h.b.Workers(r.Context())
	if err != nil {
		return err
	}
	for _, info := range ws {
		if info.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, info)
			return nil
		}
	}
	return broker.ErrNotFound
}

// waitFrom reads a long poll's wait in milliseconds, capped at maxWait.
func waitFrom(ms int64) time.Duration {
	if ms <= 0 || ms > maxWait.Milliseconds() {
		return maxWait
	}
	return time.Duration(ms) * time.Millisecond
}

func (h *handler) reserve(w http.ResponseWriter, r *http.Request) error {
	var req reserveRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	switch {
	case req.WorkerID == "":
		return badInput("worker_id is required")
	case len(req.Models) == 0:
		return badInput("models must name at least one model")
	case req.N < 1 || req.N > maxReserveN:
		return badInput("n must be between 1 and %d", maxReserveN)
	}
	ctx, cancel := context.WithTimeout(r.Context(), waitFrom(req.WaitMS))
	defer cancel()
	leases, err := h.b.Reserve(ctx, req.WorkerID, req.Models, req.N)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		writeJSON(w, http.StatusOK, reserveResponse{Leases: []Lease{}})
		return nil
	default:
		return err
	}
	if r.Context().Err() != nil {
		// The worker hung up while the jobs were being reserved: hand them straight back
		// rather than let their leases lapse (which would cost each an attempt).
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer rcancel()
		for _, l := range leases {
			if err := h.b.Release(rctx, l); err != nil {
				h.log.Warn("release a job reserved for a worker that hung up", "job", l.Job.ID, "err", err)
			}
		}
		return nil
	}
	resp := reserveResponse{Leases: make([]Lease, len(leases))}
	for i, l := range leases {
		resp.Leases[i] = toWire(l, true)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (h *handler) extend(w http.ResponseWriter, r *http.Request) error {
	var req leaseRequest
	if err := leaseFor(r, &req, &req.Lease); err != nil {
		return err
	}
	l := req.Lease.lease()
	if err := h.b.ExtendLease(r.Context(), l); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, extendResponse{Until: l.Until})
	return nil
}

// partialError is a batch of events that failed after some were appended.
type partialError struct {
	written int
	err     error
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

func (h *handler) appendEvents(w http.ResponseWriter, r *http.Request) error {
	var req appendRequest
	if err := leaseFor(r, &req, &req.Lease); err != nil {
		return err
	}
	if len(req.Events) == 0 || len(req.Events) > maxEventBatch {
		return badInput("events must hold between 1 and %d events", maxEventBatch)
	}
	l := req.Lease.lease()
	ids := make([]string, 0, len(req.Events))
	for _, ev := range req.Events {
		id, err := h.b.AppendEvent(r.Context(), l, ev)
		if err != nil {
			if len(ids) == 0 {
				return err
			}
			return &partialError{written: len(ids), err: err}
		}
		ids = append(ids, id)
	}
	writeJSON(w, http.StatusOK, appendResponse{IDs: ids})
	return nil
}

func (h *handler) complete(w http.ResponseWriter, r *http.Request) error {
	var req completeRequest
	if err := leaseFor(r, &req, &req.Lease); err != nil {
		return err
	}
	if err := h.b.Complete(r.Context(), req.Lease.lease(), req.Result); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request) error {
	var req failRequest
	if err := leaseFor(r, &req, &req.Lease); err != nil {
		return err
	}
	if err := h.b.Fail(r.Context(), req.Lease.lease(), req.Error); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) release(w http.ResponseWriter, r *http.Request) error {
	var req leaseRequest
	if err := leaseFor(r, &req, &req.Lease); err != nil {
		return err
	}
	if err := h.b.Release(r.Context(), req.Lease.lease()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, wait := 100, time.Duration(0)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit must be between 1 and 1000")
		}
		limit = n
	}
	if s := q.Get("wait_ms"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < 0 {
			return badInput("wait_ms must be a non-negative number")
		}
		if ms > 0 {
			wait = waitFrom(ms)
		}
	}
	evs, err := h.b.Events(r.Context(), r.PathValue("id"), q.Get("after"), limit, wait)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []broker.Event{}
	}
	writeJSON(w, http.StatusOK, eventsResponse{Events: evs})
	return nil
}
