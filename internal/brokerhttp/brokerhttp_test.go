package brokerhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/brokerhttp"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker"
)

var (
	_ worker.Broker       = (*brokerhttp.Client)(nil)
	_ worker.EventBatcher = (*brokerhttp.Client)(nil)
	_ worker.WorkerLister = (*brokerhttp.Client)(nil)
)

const patience = 15 * time.Second

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openBroker(t *testing.T) *sqlitebroker.Broker {
	t.Helper()
	return openBrokerLease(t, 3*time.Second)
}

func openBrokerLease(t *testing.T, lease time.Duration) *sqlitebroker.Broker {
	t.Helper()
	b, err := sqlitebroker.Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"),
		broker.Config{Lease: lease, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}, logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// tokenAuth stands in for the API's key check, which lives outside this package: "good" passes,
// "weak" is a key without the worker scope (403), anything else is unknown (401).
func tokenAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			h.ServeHTTP(w, r)
		case "Bearer weak":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"message":"this key lacks the worker scope","type":"permission_error"}}`))
		default:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"message":"invalid API key","type":"authentication_error"}}`))
		}
	})
}

// serve starts the handler over b behind tokenAuth on a real HTTP server.
func serve(t *testing.T, b brokerhttp.Broker) string {
	t.Helper()
	srv := httptest.NewServer(tokenAuth(brokerhttp.NewHandler(b, logger())))
	t.Cleanup(srv.Close)
	return srv.URL
}

func enqueue(t *testing.T, b broker.Broker, model string, input string) job.Job {
	t.Helper()
	j, _, err := b.Enqueue(context.Background(), job.Job{Kind: job.KindChat, Model: model, Input: json.RawMessage(input)})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitStatus(t *testing.T, b broker.Broker, id string, want job.Status) job.Job {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		j, err := b.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, j.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runWorker(t *testing.T, c worker.Broker, id string, eng worker.Engine) (stop func() error) {
	t.Helper()
	w, err := worker.New(worker.Config{ID: id, Models: []worker.Model{{Name: "m", Kind: worker.KindText, Engine: "sim", Slots: 2}},
		DrainTimeout: time.Second}, c, map[string]worker.Engine{"m": eng}, logger(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var stopped bool
	var runErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(patience):
				t.Fatal("worker did not stop")
			}
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestWorkerOverHTTP runs the whole job flow of a worker whose only way to the broker is the
// HTTP client: register, long-poll reserve, deltas, complete, deregister.
func TestWorkerOverHTTP(t *testing.T) {
	b := openBroker(t)
	c := brokerhttp.NewClient(serve(t, b), "good", nil)
	stop := runWorker(t, c, "remote-1", sim.New(sim.Config{Tokens: 8, InterTokenLatency: time.Millisecond}))

	var ids []string
	for range 3 {
		ids = append(ids, enqueue(t, b, "m", `{"messages":[{"role":"user","content":"hello"}]}`).ID)
	}
	for _, id := range ids {
		j := waitStatus(t, b, id, job.StatusSucceeded)
		var res inference.TextResult
		if err := json.Unmarshal(j.Result, &res); err != nil || res.Usage.CompletionTokens != 8 {
			t.Errorf("result %s: %v", j.Result, err)
		}
		var streamed string
		evs, _ := b.Events(context.Background(), id, "", 1000, 0)
		for _, ev := range evs {
			if ev.Type == broker.EventDelta {
				var d inference.TextDelta
				_ = json.Unmarshal(ev.Data, &d)
				streamed += d.Text
			}
		}
		if streamed != res.Choices[0].Text {
			t.Errorf("deltas %q, result %q", streamed, res.Choices[0].Text)
		}
		if j.WorkerID != "remote-1" {
			t.Errorf("worker = %q", j.WorkerID)
		}
	}
	ws, _ := b.Workers(context.Background())
	if len(ws) != 1 || ws[0].ID != "remote-1" || ws[0].Slots != 2 {
		t.Errorf("registry = %+v, want remote-1 with 2 slots", ws)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if ws, _ := b.Workers(context.Background()); len(ws) != 0 {
		t.Errorf("registry after stop = %+v, want empty", ws)
	}
}

// blocking blocks until its context ends and reports the cause.
type blocking struct {
	started chan struct{}
	ended   chan error
}

func (e *blocking) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	e.started <- struct{}{}
	<-ctx.Done()
	e.ended <- context.Cause(ctx)
	return inference.TextResult{}, ctx.Err()
}

// TestCancelOverHTTP: a job canceled at the API aborts the remote worker's engine at once, through
// the long-polled event log.
func TestCancelOverHTTP(t *testing.T) {
	b := openBrokerLease(t, time.Minute) // extended every 10s: only the event watch is quick
	c := brokerhttp.NewClient(serve(t, b), "good", nil)
	eng := &blocking{started: make(chan struct{}, 1), ended: make(chan error, 1)}
	runWorker(t, c, "remote-1", eng)
	j := enqueue(t, b, "m", `{"messages":[{"role":"user","content":"hello"}]}`)
	<-eng.started
	start := time.Now()
	if _, err := b.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-eng.ended:
		if !errors.Is(err, broker.ErrCanceled) {
			t.Errorf("engine ended with %v, want broker.ErrCanceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("engine aborted after %v", d)
		}
	case <-time.After(patience):
		t.Fatal("engine not aborted")
	}
}

// TestClientErrors: every broker error comes back as the same sentinel through HTTP.
func TestClientErrors(t *testing.T) {
	b := openBroker(t)
	c := brokerhttp.NewClient(serve(t, b), "good", nil)
	ctx := context.Background()

	if err := c.HeartbeatWorker(ctx, "nobody"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("heartbeat of an unknown worker: %v, want ErrNotFound", err)
	}
	if _, err := c.Events(ctx, "job_unknown", "", 10, 0); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("events of an unknown job: %v, want ErrNotFound", err)
	}

	j := enqueue(t, b, "m", `{}`)
	ls, err := c.Reserve(ctx, "w", []string{"m"}, 1)
	if err != nil || len(ls) != 1 || ls[0].Job.ID != j.ID || string(ls[0].Job.Input) != `{}` {
		t.Fatalf("reserve = %+v, %v", ls, err)
	}
	l := ls[0]
	before := l.Until
	time.Sleep(10 * time.Millisecond)
	if err := c.ExtendLease(ctx, l); err != nil || !l.Until.After(before) {
		t.Errorf("extend: %v, until %v → %v", err, before, l.Until)
	}
	n, err := c.AppendEvents(ctx, l, []broker.Event{{Type: broker.EventDelta, Data: json.RawMessage(`{"text":"a"}`)}, {Type: broker.EventDelta, Data: json.RawMessage(`{"text":"b"}`)}})
	if err != nil || n != 2 {
		t.Errorf("append 2 events: %d, %v", n, err)
	}
	stale := *l
	stale.Attempt++
	if err := c.Complete(ctx, &stale, json.RawMessage(`{}`)); !errors.Is(err, broker.ErrLeaseLost) {
		t.Errorf("complete with a stale lease: %v, want ErrLeaseLost", err)
	}
	if _, err := b.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.ExtendLease(ctx, l); !errors.Is(err, broker.ErrCanceled) {
		t.Errorf("extend a canceled job: %v, want ErrCanceled", err)
	}
	if _, err := c.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`{}`)}); !errors.Is(err, broker.ErrCanceled) {
		t.Errorf("append to a canceled job: %v, want ErrCanceled", err)
	}
	evs, err := c.Events(ctx, j.ID, "", 100, 0)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != broker.EventStatus {
		t.Errorf("events = %+v, %v; want the log ending in a status event", evs, err)
	}

	// A long poll answers as soon as a job is there.
	got := make(chan []*broker.Lease, 1)
	go func() {
		ls, _ := c.Reserve(ctx, "w", []string{"later"}, 1)
		got <- ls
	}()
	time.Sleep(100 * time.Millisecond)
	later := enqueue(t, b, "later", `{}`)
	select {
	case ls := <-got:
		if len(ls) != 1 || ls[0].Job.ID != later.ID {
			t.Errorf("long poll got %+v", ls)
		}
	case <-time.After(patience):
		t.Fatal("long poll did not answer")
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Reserve(rctx, "w", []string{"none"}, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reserve past the context's deadline: %v", err)
	}
}

// TestAuthFailures: a rejected token is a fatal error that names the cause, and a worker with
// one stops at start instead of retrying forever.
func TestAuthFailures(t *testing.T) {
	b := openBroker(t)
	url := serve(t, b)
	for _, tc := range []struct {
		token  string
		status int
		words  string
	}{
		{"wrong", http.StatusUnauthorized, "invalid API key"},
		{"weak", http.StatusForbidden, "worker scope"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			c := brokerhttp.NewClient(url, tc.token, nil)
			err := c.RegisterWorker(context.Background(), broker.WorkerInfo{ID: "w"})
			var ae *brokerhttp.AuthError
			if !errors.As(err, &ae) || ae.Status != tc.status || !errors.Is(err, brokerhttp.ErrUnauthorized) || !worker.Fatal(err) {
				t.Fatalf("register: %v, want a fatal AuthError %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error %q does not say %q", err, tc.words)
			}
			w, err := worker.New(worker.Config{ID: "w", Models: []worker.Model{{Name: "m", Kind: worker.KindText, Slots: 1}}},
				c, map[string]worker.Engine{"m": sim.New(sim.Config{})}, logger(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := w.Run(ctx); !errors.Is(err, brokerhttp.ErrUnauthorized) || ctx.Err() != nil {
				t.Errorf("Run with a rejected token: %v, want ErrUnauthorized at once", err)
			}
		})
	}
}
