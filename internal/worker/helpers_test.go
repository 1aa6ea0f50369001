package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker"
)

// patience is how long an "eventually" may take on a loaded two-core machine with -race.
const patience = 15 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newBroker opens a real SQLite broker in the test's directory, with a short lease and retry
// backoff so that lapses and retries happen within a test.
func newBroker(t *testing.T, lease time.Duration) *sqlitebroker.Broker {
	t.Helper()
	b, err := sqlitebroker.Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"),
		broker.Config{Lease: lease, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}, testLogger(t))
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// running is a worker started by startWorker.
type running struct {
	w    *worker.Worker
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan struct{} // closed when Run returned
	err  error         // what Run returned
}

// shutdown cancels Run's context (as SIGTERM does) and waits for Run to return.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run returned %v, want nil after a drain", r.err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return after its context ended")
	}
}

func startWorker(t *testing.T, b worker.Broker, cfg worker.Config, engines map[string]worker.Engine) *running {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "w-" + t.Name()
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 200 * time.Millisecond // blocked test engines would hold the cleanup
	}
	reg := prometheus.NewRegistry()
	w, err := worker.New(cfg, b, engines, testLogger(t).With("worker", cfg.ID), reg, nil)
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, reg: reg, stop: cancel, done: make(chan struct{})}
	go func() {
		r.err = w.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func textModel(name string, slots int) worker.Model {
	return worker.Model{Name: name, Kind: worker.KindText, Engine: "test", Slots: slots}
}

func enqueue(t *testing.T, b broker.Broker, kind job.Kind, model string, input any) job.Job {
	t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := b.Enqueue(context.Background(), job.Job{Kind: kind, Model: model, Input: raw})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return j
}

func chatInput(model, content string) map[string]any {
	return map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": content}}}
}

// waitFor polls the job until cond holds (tests may poll; the product may not).
func waitFor(t *testing.T, b broker.Broker, id, what string, cond func(job.Job) bool) job.Job {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		j, err := b.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %s (attempts %d, error %v) after %v, want %s", id, j.Status, j.Attempts, j.Error, patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitStatus(t *testing.T, b broker.Broker, id string, want job.Status) job.Job {
	t.Helper()
	return waitFor(t, b, id, string(want), func(j job.Job) bool { return j.Status == want })
}

// allEvents reads a job's whole event log.
func allEvents(t *testing.T, b broker.Broker, id string) []broker.Event {
	t.Helper()
	var out []broker.Event
	after := ""
	for {
		evs, err := b.Events(context.Background(), id, after, 1000, 0)
		if err != nil {
			t.Fatalf("events of %s: %v", id, err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].ID
	}
}

// engineFunc adapts functions to the engine interfaces, for engines whose behaviour a test must
// control exactly (block until canceled, fail on the first attempt).
type engineFunc struct {
	text func(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error)
}

func (e engineFunc) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	return e.text(ctx, req, emit)
}

// blockingEngine blocks every call until its context ends, and reports when calls start and end.
type blockingEngine struct {
	started chan string // the prompt's first message of each call that started
	ended   chan error  // each call's return
}

func newBlockingEngine() *blockingEngine {
	return &blockingEngine{started: make(chan string, 100), ended: make(chan error, 100)}
}

func (e *blockingEngine) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	e.started <- string(req.Messages[0].Content)
	<-ctx.Done()
	err := context.Cause(ctx)
	if err == nil {
		err = errors.New("no cause")
	}
	e.ended <- err
	return inference.TextResult{}, ctx.Err()
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(patience):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
