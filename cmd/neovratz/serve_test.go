package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/redistest"
)

// syncBuffer is a bytes buffer safe for the program's writes and the test's reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is the program running in-process.
type running struct {
	addr   string // the address it listens on, from its "listening" log line
	logs   *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// start runs the program in-process with args and waits until it listens.
func start(t *testing.T, e env, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	m := &Main{Stdout: r.logs, Stderr: r.stderr, Getenv: e.get}
	go func() { r.done <- m.Run(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("program did not stop 30s after its context ended")
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		for _, line := range strings.Split(r.logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				r.addr = rec.Addr
				return r
			}
		}
		select {
		case code := <-r.done:
			t.Fatalf("program exited with %d before listening; stderr: %s\nlogs: %s", code, r.stderr, r.logs)
		case <-deadline:
			t.Fatalf("program not listening after 60s; logs: %s", r.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop cancels the program's context, as SIGTERM does in main, and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("program did not stop 30s after its context ended")
		return -1
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func getAuth(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkServing checks the endpoints every HTTP command serves.
func checkServing(t *testing.T, addr string) {
	t.Helper()
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/healthz", 200, "ok\n"},
		{"/readyz", 200, "ok\n"},
		{"/version", 200, `"version":"dev"`},
	} {
		code, body := get(t, "http://"+addr+c.path)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, code, body, c.code, c.body)
		}
	}
}

// checkJSONLogs checks that every line of logs is a JSON object.
func checkJSONLogs(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
}

func TestServeEmbedded(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data") // serve creates it
	r := start(t, env{}, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	checkServing(t, r.addr)
	if _, err := os.Stat(filepath.Join(dataDir, "broker.db")); err != nil {
		t.Errorf("embedded broker database: %v", err)
	}
	// With no key in the store, serve generates an admin key and prints it once, on stderr.
	token := ""
	for _, f := range strings.Fields(r.stderr.String()) {
		if strings.HasPrefix(f, "nvk_") {
			token = f
		}
	}
	if code, _ := getAuth(t, "http://"+r.addr+"/v1/models", token); token == "" || code != 200 {
		t.Errorf("GET /v1/models with the printed key: %d; stderr %q", code, r.stderr)
	}
	if code, _ := getAuth(t, "http://"+r.addr+"/v1/models", ""); code != 401 {
		t.Errorf("GET /v1/models without a key: %d, want 401", code)
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code %d after shutdown, want 0; stderr: %s", code, r.stderr)
	}
	if strings.Count(r.stderr.String(), "nvk_") != 1 {
		t.Errorf("stderr %q, want the bootstrap key once and nothing else", r.stderr)
	}
	if token != "" && strings.Contains(r.logs.String(), token[strings.LastIndex(token, "_"):]) {
		t.Error("the bootstrap key's secret is in the logs")
	}
	checkJSONLogs(t, r.logs.String())
	// No models section and an empty (missing) models directory: it says how to get a model.
	if !strings.Contains(r.logs.String(), "download one with 'neovratz pull REF'") {
		t.Errorf("logs do not tell how to get a model: %s", r.logs)
	}
	if _, err := http.Get("http://" + r.addr + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestServeRedis(t *testing.T) {
	url := redistest.URL(t)
	r := start(t, env{"NEOVRATZ_REDIS_URL": url}, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	checkServing(t, r.addr)
	if !strings.Contains(r.logs.String(), `"broker":"redis"`) {
		t.Errorf("logs do not say the broker is Redis: %s", r.logs)
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code %d after shutdown, want 0; stderr: %s", code, r.stderr)
	}
}

func TestAPIRedis(t *testing.T) {
	url := redistest.URL(t)
	r := start(t, env{}, "api", "--addr", "127.0.0.1:0", "--redis-url", url, "--log-level", "debug")
	checkServing(t, r.addr)
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code %d after shutdown, want 0; stderr: %s", code, r.stderr)
	}
}

func TestAPIRedisUnreachable(t *testing.T) {
	// A port nobody listens on: bind one, then free it.
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, _, stderr := runCtx(ctx, env{}, "api", "--addr", "127.0.0.1:0", "--redis-url", "redis://"+addr+"/0")
	if code != exitError || !strings.Contains(stderr, "redis") {
		t.Errorf("exit code %d, stderr %q; want 1 and a Redis error", code, stderr)
	}
}

// TestBinary builds the real, static binary and stops it with SIGTERM, as a service manager
// would: this covers main's signal handling and the -ldflags version stamp.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "neovratz")
	build := exec.Command(gobin, "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "text")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	addrc := make(chan string, 1)
	var logs syncBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if strings.Contains(line, "msg=listening") {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						addrc <- a
					}
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(60 * time.Second):
		t.Fatalf("binary not listening after 60s; stderr %s; logs %s", &stderr, &logs)
	}
	checkServingVersion(t, addr, "v0.0.0-test")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	select {
	case err := <-waitc:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0; stderr %s", err, &stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("binary did not exit 30s after SIGTERM")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("logs do not show a graceful stop:\n%s", &logs)
	}
}

func checkServingVersion(t *testing.T, addr, version string) {
	t.Helper()
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("GET /readyz: %d %q, want 200", code, body)
	}
	code, body := get(t, "http://"+addr+"/version")
	var b buildInfo
	if err := json.Unmarshal([]byte(body), &b); code != 200 || err != nil || b.Version != version {
		t.Errorf("GET /version: %d %q, want 200 and version %q", code, body, version)
	}
}
