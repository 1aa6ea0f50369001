package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHealthcheck runs `neovratz healthcheck` against real HTTP servers: exit 0 for a 200 only.
func TestHealthcheck(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"healthy": false,` + "\n" + ` "engines": {"llm": "connection refused"}}`))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/method", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for the slow handler

	// A port nothing listens on: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	tests := []struct {
		name       string
		args       []string
		env        env
		code       int
		stdout     string // substrings
		stderr     string
		maxSeconds float64
	}{
		{name: "200", args: []string{"--url", srv.URL + "/ok"}, code: 0, stdout: "200 OK"},
		{name: "GET", args: []string{"--url", srv.URL + "/method"}, code: 0},
		{name: "url from the environment", env: env{"NEOVRATZ_URL": srv.URL + "/ok"}, code: 0, stdout: srv.URL + "/ok"},
		{name: "503 says why", args: []string{"--url", srv.URL + "/down"}, code: 1,
			stderr: `503 Service Unavailable: {"healthy": false, "engines": {"llm": "connection refused"}}`},
		{name: "redirect not followed", args: []string{"--url", srv.URL + "/moved"}, code: 1, stderr: "302 Found"},
		{name: "timeout", args: []string{"--url", srv.URL + "/slow", "--timeout", "200ms"}, code: 1,
			stderr: "no answer within 200ms", maxSeconds: 5},
		{name: "connection refused", args: []string{"--url", refused}, code: 1, stderr: "refused"},
		{name: "not a URL", args: []string{"--url", "127.0.0.1:8080/readyz"}, code: 2, stderr: "--url"},
		{name: "positional argument", args: []string{srv.URL + "/ok"}, code: 2, stderr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := run(t, tt.env, append([]string{"healthcheck"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			if tt.maxSeconds > 0 && time.Since(start).Seconds() > tt.maxSeconds {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}
