package httpapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
)

// reqInfo is what the middleware and the handler of one request share: the request id, the
// matched route, the key, and what the access log line reports.
type reqInfo struct {
	id    string
	start time.Time
	route string
	key   *auth.Key
	jobID string
	model string
	err   error // what the handler returned, for the log
}

type ctxKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(ctxKey{}).(*reqInfo)
	return i
}

func (i *reqInfo) requestID() string {
	if i == nil {
		return ""
	}
	return i.id
}

// keyOf returns the key a request was authenticated with.
func keyOf(r *http.Request) *auth.Key { return infoFrom(r.Context()).key }

// requestID returns the client's X-Request-Id when it is sane, or a new one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return hex.EncodeToString(randomBytes(8))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// statusWriter records what a handler wrote, for the log, the metrics, and to know whether an
// error can still be answered with a status.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) wrote() bool { return w.status != 0 }

// probeWriter catches what the mux's own not-found and method-not-allowed handlers write, so the
// client gets OpenAI's error envelope instead.
type probeWriter struct {
	h      http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.h }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }

// buildHandler puts every route on a mux behind the middleware every request passes: request
// id, panic recovery, metrics and the access log.
func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.pattern, s.wrapRoute(rt))
	}
	if s.cfg.WorkerHandler != nil {
		mux.Handle(workerPrefix, s.wrapRoute(route{pattern: workerPrefix, scope: auth.ScopeWorker, raw: s.cfg.WorkerHandler}))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqInfo{id: requestID(r), start: s.cfg.Now()}
		w.Header().Set("X-Request-Id", info.id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
		defer s.finish(sw, r, info)

		// mux.Handler finds the route without serving it; ServeHTTP then serves it, which also
		// sets the path values.
		if h, pattern := mux.Handler(r); pattern == "" {
			s.unmatched(sw, r, h)
			return
		}
		mux.ServeHTTP(sw, r)
	})
}

// unmatched answers a request no route matched with the status the mux chose (404 or 405).
func (s *Server) unmatched(w *statusWriter, r *http.Request, h http.Handler) {
	p := &probeWriter{h: http.Header{}}
	h.ServeHTTP(p, r)
	if p.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", p.h.Get("Allow"))
		writeError(w, r, s.log, &Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
		return
	}
	writeError(w, r, s.log, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
		Message: fmt.Sprintf("unknown request URL: %s %s", r.Method, r.URL.Path)})
}

// finish recovers a panic into a 500, then counts and logs the request.
func (s *Server) finish(w *statusWriter, r *http.Request, info *reqInfo) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p) // the server's way to abort a response; it logs nothing
		}
		s.log.Error("panic serving request", "request_id", info.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if !w.wrote() {
			writeError(w, r, s.log, errInternal(fmt.Errorf("panic: %v", p)))
		}
	}
	status := w.status
	if status == 0 {
		// The handler wrote nothing: the client went away before there was anything to send.
		status = 499
	}
	route := info.route
	if route == "" {
		route = "unmatched"
	}
	dur := s.cfg.Now().Sub(info.start)
	s.metrics.httpRequests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	s.metrics.httpDuration.WithLabelValues(route, r.Method).Observe(dur.Seconds())

	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics":
		level = slog.LevelDebug // probes and scrapes would drown the log
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id), slog.String("method", r.Method), slog.String("route", route),
		slog.String("path", r.URL.Path), slog.Int("status", status), slog.Float64("duration_ms", float64(dur.Microseconds())/1000),
		slog.Int64("bytes", w.bytes), slog.String("remote", r.RemoteAddr),
	}
	if info.key != nil {
		attrs = append(attrs, slog.String("key", info.key.ID))
	}
	if info.jobID != "" {
		attrs = append(attrs, slog.String("job", info.jobID))
	}
	if info.model != "" {
		attrs = append(attrs, slog.String("model", info.model))
	}
	if info.err != nil {
		attrs = append(attrs, slog.String("err", info.err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// wrapRoute adds what every route needs around its handler: the body limit, the write
// deadline, authentication and limits for its scope, and error answers.
func (s *Server) wrapRoute(rt route) http.Handler {
	name := rt.method + " " + rt.pattern
	if rt.method == "" {
		name = rt.pattern
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.route = name
		rc := http.NewResponseController(w)
		longest := s.cfg.Now().Add(s.cfg.SyncTimeout + time.Minute)
		if rt.raw == nil {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
			}
		} else {
			// A mounted handler (workers over HTTP) limits its own bodies, per route: a
			// finished image job's result is larger than any request to the API. Its long
			// polls outlast the server's ReadTimeout, which would otherwise end them.
			_ = rc.SetReadDeadline(longest)
		}
		// The server has no WriteTimeout, as streams last as long as a generation; every
		// response gets a deadline here instead, past the longest synchronous call.
		_ = rc.SetWriteDeadline(longest)
		if rt.scope != "" {
			if err := s.authenticate(w, r, rt.scope); err != nil {
				writeError(w, r, s.log, err)
				return
			}
		}
		if rt.raw != nil {
			rt.raw.ServeHTTP(w, r)
			return
		}
		if err := rt.h(w, r); err != nil {
			if sw, ok := w.(*statusWriter); ok && sw.wrote() {
				// Too late for a status (a stream broke off): the log has it.
				info.err = err
				return
			}
			if err == errClientGone {
				info.err = err
				return
			}
			writeError(w, r, s.log, err)
		}
	})
}
