package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// fakePinger stands in for a broker whose store is down, which a real broker cannot be made
// into on demand; the end-to-end tests cover a real, reachable broker.
type fakePinger struct{ err error }

func (p fakePinger) Ping(ctx context.Context) error { return p.err }

func TestOpsHandler(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name     string
		ping     error
		path     string
		method   string
		code     int
		body     string // substring
		mustNot  string // substring the body must not contain
		jsonBody bool
	}{
		{name: "healthz", path: "/healthz", code: 200, body: "ok"},
		{name: "healthz while broker down", ping: errors.New("dial tcp: refused"), path: "/healthz", code: 200, body: "ok"},
		{name: "readyz", path: "/readyz", code: 200, body: "ok"},
		{name: "readyz while broker down", ping: errors.New("dial tcp 10.0.0.7:6379: refused"), path: "/readyz", code: 503, body: "broker unavailable", mustNot: "10.0.0.7"},
		{name: "version", path: "/version", code: 200, body: `"go":"` + runtime.Version() + `"`, jsonBody: true},
		{name: "post not allowed", path: "/healthz", method: "POST", code: 405},
		{name: "unknown path", path: "/nope", code: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newOpsHandler(fakePinger{tt.ping}, logger)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, tt.path, nil))
			body := rec.Body.String()
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.code, body)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body %q, want it to contain %q", body, tt.body)
			}
			if tt.mustNot != "" && strings.Contains(body, tt.mustNot) {
				t.Errorf("body %q leaks %q", body, tt.mustNot)
			}
			if tt.jsonBody {
				var b buildInfo
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
					t.Errorf("body is not JSON: %v", err)
				}
				if b.Version != version {
					t.Errorf("version %q, want %q", b.Version, version)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			}
		})
	}
}

func TestServeHTTPListenError(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	err := serveHTTP(context.Background(), addr, http.NotFoundHandler(), logger)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("serveHTTP on a taken port: err %v, want a listen error", err)
	}
}
