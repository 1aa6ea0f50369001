// Package workertest starts a whole neovratz in one process — the embedded SQLite broker, the
// HTTP API (without auth) and a worker serving models on the sim engine — so that engines that
// talk to an OpenAI-compatible server are tested against a real neovratz rather than a
// hand-written fake. The managed-process test builds a program around it, and the worker
// benchmark uses it.
package workertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/worker"
)

// Default model names of a stack started without models.
const (
	TextModel      = "sim-text"
	EmbeddingModel = "sim-embed"
	ImageModel     = "sim-image"
)

// Options configure a stack. Zero values take the defaults.
type Options struct {
	Dir    string         // for the broker's database; required
	Sim    sim.Config     // the engine's behaviour
	Models []worker.Model // default: TextModel (8 slots), EmbeddingModel and ImageModel (2 slots each)
	Logger *slog.Logger   // default: discard
}

// Stack is a running neovratz.
type Stack struct {
	URL    string // the API's root, http://127.0.0.1:PORT; the OpenAI API is under /v1
	Broker *sqlitebroker.Broker
	Worker *worker.Worker

	srv       *http.Server
	api       *httpapi.Server
	stopWork  context.CancelFunc
	workerErr chan error
	serveErr  chan error
}

// Start serves a stack on ln until Close.
func Start(ctx context.Context, ln net.Listener, opts Options) (*Stack, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Models) == 0 {
		opts.Models = []worker.Model{
			{Name: TextModel, Kind: worker.KindText, Engine: "sim", Slots: 8, Limits: worker.Limits{MaxContext: 4096}},
			{Name: EmbeddingModel, Kind: worker.KindEmbedding, Engine: "sim", Slots: 2},
			{Name: ImageModel, Kind: worker.KindImage, Engine: "sim", Slots: 2},
		}
	}
	b, err := sqlitebroker.Open(ctx, filepath.Join(opts.Dir, "broker.db"), broker.Config{}, opts.Logger)
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{Broker: b, Logger: opts.Logger, Registry: prometheus.NewRegistry(), AuthDisabled: true})
	if err != nil {
		b.Close()
		return nil, err
	}
	eng := sim.New(opts.Sim)
	engines := map[string]worker.Engine{}
	for _, m := range opts.Models {
		engines[m.Name] = eng
	}
	w, err := worker.New(worker.Config{ID: "workertest-" + ln.Addr().String(), Hostname: "workertest", Version: "test", Models: opts.Models,
		DrainTimeout: 2 * time.Second}, b, engines, opts.Logger, prometheus.NewRegistry(), nil)
	if err != nil {
		api.Close()
		b.Close()
		return nil, err
	}
	s := &Stack{URL: "http://" + ln.Addr().String(), Broker: b, Worker: w, api: api,
		workerErr: make(chan error, 1), serveErr: make(chan error, 1)}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopWork = stop
	go func() { s.workerErr <- w.Run(wctx) }()
	s.srv = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady waits until the API lists the worker's models: before that, requests would get 503.
func (s *Stack) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		ws, err := s.Broker.Workers(ctx)
		if err == nil && len(ws) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("worker did not register: %w", errors.Join(err, ctx.Err()))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close drains the worker and stops the API and the broker.
func (s *Stack) Close() error {
	s.stopWork()
	werr := <-s.workerErr
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	herr := s.srv.Shutdown(ctx)
	if errors.Is(<-s.serveErr, http.ErrServerClosed) {
		herr = nil
	}
	return errors.Join(werr, herr, s.api.Close(), s.Broker.Close())
}

// New starts a stack for a test on a free loopback port and closes it when the test ends.
func New(t testing.TB, opts Options) *Stack {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), ln, opts)
	if err != nil {
		t.Fatalf("start neovratz: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close neovratz: %v", err)
		}
	})
	return s
}
