package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/outbox"
	"github.com/neovratz/neovratz/internal/redistest"
)

// env is a real API server on 127.0.0.1:0 over a real broker, with a test worker serving it.
type env struct {
	cfg    Config // what api was built with
	url    string
	api    *Server
	b      broker.Broker
	keys   *auth.Keys
	admin  string // a token with every scope
	reg    *prometheus.Registry
	worker *testWorker
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// brokers runs f once per broker, as a subtest named after it.
func brokers(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range []string{"sqlite", "redis"} {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// newEnv starts an API on the broker of kind ("sqlite" or "redis"); mod adjusts its Config.
func newEnv(t *testing.T, kind string, mod ...func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, kind, broker.Config{}, mod...)
}

// newEnvWith is newEnv with the broker's configuration.
func newEnvWith(t *testing.T, kind string, bcfg broker.Config, mod ...func(*Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{reg: prometheus.NewRegistry(), logs: logs}
	cfg := Config{Logger: logger, Registry: e.reg, Version: map[string]string{"version": "test"}, KeepAlive: time.Second,
		// The tests' webhook receivers listen on loopback, which webhooks may reach only when allowed.
		Webhooks: WebhookConfig{Backoff: func(int) time.Duration { return 50 * time.Millisecond },
			AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	switch kind {
	case "sqlite":
		dir := t.TempDir()
		b, err := sqlitebroker.Open(ctx, filepath.Join(dir, "broker.db"), bcfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		store, err := auth.OpenSQLite(ctx, filepath.Join(dir, "broker.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		ob, err := outbox.OpenSQLite(ctx, filepath.Join(dir, "broker.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ob.Close() })
		cfg.Outbox = ob
		e.b = b
		e.keys = auth.NewKeys(store, nil)
		cfg.Limiter, cfg.Slots = auth.NewMemoryLimiter(nil), auth.NewMemorySlots(nil)
	case "redis":
		rdb := redistest.Client(t)
		prefix := redistest.Prefix(t)
		b, err := redisbroker.New(ctx, rdb, redisbroker.Options{Config: bcfg, Prefix: prefix, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		e.b = b
		e.keys = auth.NewKeys(auth.NewRedisStore(rdb, prefix), nil)
		cfg.Limiter, cfg.Slots = auth.NewRedisLimiter(rdb, prefix), auth.NewRedisSlots(rdb, prefix)
		cfg.Outbox = outbox.NewRedis(rdb, prefix)
	default:
		t.Fatalf("unknown broker %q", kind)
	}
	cfg.Broker, cfg.Keys = e.b, e.keys
	for _, m := range mod {
		m(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.api, e.cfg = api, cfg
	srv := httptest.NewServer(api.Handler())
	e.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		api.Close()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	token, created, err := e.keys.Bootstrap(ctx, "")
	if err != nil || !created {
		t.Fatalf("bootstrap: %v, created %v", err, created)
	}
	e.admin = token
	e.worker = startTestWorker(t, e.b)
	return e
}

// replica starts a second API server on the same broker and stores, as another replica behind
// a load balancer would be, and returns its URL.
func (e *env) replica(t *testing.T) string {
	t.Helper()
	cfg := e.cfg
	cfg.Registry = prometheus.NewRegistry()
	if _, ok := cfg.Limiter.(*auth.RedisLimiter); !ok {
		t.Fatal("replicas share limits only through Redis")
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.Close()
		api.Close()
	})
	return srv.URL
}

// key creates a key from spec and returns its token.
func (e *env) key(t *testing.T, spec auth.Spec) (auth.Key, string) {
	t.Helper()
	if spec.Name == "" {
		spec.Name = t.Name()
	}
	k, token, err := e.keys.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return k, token
}

// do sends a request and returns the response with its body read.
func (e *env) do(t *testing.T, method, path, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// client is the official OpenAI Go client pointed at the server.
func (e *env) client(token string) openai.Client {
	return openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey(token), option.WithMaxRetries(0))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
