package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker"
)

// TestEndToEnd runs every kind of job through a real SQLite broker, a worker and the sim engine:
// submitted → deltas/progress in the event log → result.
func TestEndToEnd(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	eng := sim.New(sim.Config{Tokens: 12, InterTokenLatency: time.Millisecond, EmbeddingDim: 8, ImageSteps: 3})
	cfg := worker.Config{Models: []worker.Model{
		{Name: "text", Kind: worker.KindText, Engine: "sim", Slots: 2},
		{Name: "embed", Kind: worker.KindEmbedding, Engine: "sim", Slots: 1},
		{Name: "image", Kind: worker.KindImage, Engine: "sim", Slots: 1},
	}}
	startWorker(t, b, cfg, map[string]worker.Engine{"text": eng, "embed": eng, "image": eng})

	t.Run("chat", func(t *testing.T) {
		j := enqueue(t, b, job.KindChat, "text", chatInput("text", "tell me a story"))
		j = waitStatus(t, b, j.ID, job.StatusSucceeded)
		var res inference.TextResult
		if err := json.Unmarshal(j.Result, &res); err != nil {
			t.Fatalf("result %s: %v", j.Result, err)
		}
		if len(res.Choices) != 1 || res.Usage.CompletionTokens != 12 || res.Choices[0].FinishReason != "stop" {
			t.Errorf("result = %+v, want one choice of 12 tokens finished by stop", res)
		}
		var streamed strings.Builder
		for _, ev := range allEvents(t, b, j.ID) {
			if ev.Type == broker.EventDelta {
				var d inference.TextDelta
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					t.Fatalf("delta %s: %v", ev.Data, err)
				}
				streamed.WriteString(d.Text)
			}
		}
		if streamed.String() != res.Choices[0].Text {
			t.Errorf("deltas join to %q, result text is %q", streamed.String(), res.Choices[0].Text)
		}
	})
	t.Run("completion with max_tokens", func(t *testing.T) {
		j := enqueue(t, b, job.KindCompletion, "text", map[string]any{"model": "text", "prompt": "once", "max_tokens": 3})
		j = waitStatus(t, b, j.ID, job.StatusSucceeded)
		var res inference.TextResult
		_ = json.Unmarshal(j.Result, &res)
		if res.Usage.CompletionTokens != 3 || res.Choices[0].FinishReason != "length" {
			t.Errorf("result = %+v, want 3 tokens finished by length", res)
		}
	})
	t.Run("embedding", func(t *testing.T) {
		j := enqueue(t, b, job.KindEmbedding, "embed", map[string]any{"model": "embed", "input": []string{"a", "b"}})
		j = waitStatus(t, b, j.ID, job.StatusSucceeded)
		var res inference.EmbeddingResult
		_ = json.Unmarshal(j.Result, &res)
		if len(res.Embeddings) != 2 || len(res.Embeddings[0]) != 8 {
			t.Errorf("result = %s, want 2 embeddings of 8", j.Result)
		}
	})
	t.Run("image", func(t *testing.T) {
		j := enqueue(t, b, job.KindImage, "image", map[string]any{"model": "image", "prompt": "a cat", "size": "64x64"})
		j = waitStatus(t, b, j.ID, job.StatusSucceeded)
		var res inference.ImageResult
		_ = json.Unmarshal(j.Result, &res)
		if len(res.Images) != 1 {
			t.Fatalf("result has %d images, want 1", len(res.Images))
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(res.Images[0].PNG)); err != nil || cfg.Width != 64 {
			t.Errorf("image: %+v, %v; want a 64-pixel-wide PNG", cfg, err)
		}
		steps := 0
		for _, ev := range allEvents(t, b, j.ID) {
			if ev.Type == broker.EventProgress {
				var p inference.ImageProgress
				_ = json.Unmarshal(ev.Data, &p)
				steps = p.Step
			}
		}
		if steps != 3 {
			t.Errorf("last progress step = %d, want 3", steps)
		}
	})
}

// TestBadInput: a job whose input the worker cannot run fails for good on its first attempt with
// a message that says why.
func TestBadInput(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	eng := sim.New(sim.Config{})
	startWorker(t, b, worker.Config{Models: []worker.Model{textModel("text", 1), {Name: "img", Kind: worker.KindImage, Slots: 1}}},
		map[string]worker.Engine{"text": eng, "img": eng})
	tests := []struct {
		name     string
		kind     job.Kind
		model    string
		input    any
		wantText string
	}{
		{"wrong type", job.KindChat, "text", map[string]any{"messages": "hello"}, "messages"},
		{"no messages", job.KindChat, "text", map[string]any{"messages": []any{}}, "messages"},
		{"bad role", job.KindChat, "text", map[string]any{"messages": []map[string]string{{"role": "robot", "content": "x"}}}, "role"},
		{"bad temperature", job.KindCompletion, "text", map[string]any{"prompt": "x", "temperature": 9}, "temperature"},
		{"kind the model does not serve", job.KindEmbedding, "text", map[string]any{"input": "x"}, "serves text"},
		{"bad image size", job.KindImage, "img", map[string]any{"prompt": "x", "size": "7x7"}, "size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := enqueue(t, b, tc.kind, tc.model, tc.input)
			j = waitStatus(t, b, j.ID, job.StatusFailed)
			if j.Error == nil || j.Error.Retryable || j.Error.Code != "bad_request" || !strings.Contains(j.Error.Message, tc.wantText) {
				t.Errorf("error = %+v, want a non-retryable bad_request naming %q", j.Error, tc.wantText)
			}
			if j.Attempts != 1 {
				t.Errorf("attempts = %d, want 1", j.Attempts)
			}
		})
	}
}

// TestEngineErrors: a retryable engine error sends the job back for another attempt; any other
// error fails it for good without leaking the cause to the client.
func TestEngineErrors(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	var calls atomic.Int32
	flaky := engineFunc{text: func(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
		switch req.Messages[0].Content {
		case "flaky":
			if calls.Add(1) == 1 {
				return inference.TextResult{}, worker.Retryable(errors.New("upstream: connection refused"))
			}
			return inference.TextResult{Choices: []inference.TextChoice{{Text: "ok", FinishReason: "stop"}}}, nil
		case "panic":
			panic("engine bug")
		}
		return inference.TextResult{}, errors.New("secret internal detail")
	}}
	startWorker(t, b, worker.Config{Models: []worker.Model{textModel("m", 2)}}, map[string]worker.Engine{"m": flaky})

	j := enqueue(t, b, job.KindChat, "m", chatInput("m", "flaky"))
	if j = waitStatus(t, b, j.ID, job.StatusSucceeded); j.Attempts != 2 {
		t.Errorf("flaky job: attempts = %d, want 2 (one retry)", j.Attempts)
	}
	for _, content := range []string{"broken", "panic"} {
		j = enqueue(t, b, job.KindChat, "m", chatInput("m", content))
		j = waitStatus(t, b, j.ID, job.StatusFailed)
		if j.Error == nil || j.Error.Retryable || j.Error.Code != "engine_error" || strings.Contains(j.Error.Message, "secret") || j.Attempts != 1 {
			t.Errorf("%s job: error %+v after %d attempts, want one non-retryable engine_error with a generic message", content, j.Error, j.Attempts)
		}
	}
}

// TestCancelAbortsEngine: canceling a running job cancels the engine's context at once, even
// while the engine writes nothing; the worker then takes the next job.
func TestCancelAbortsEngine(t *testing.T) {
	b := newBroker(t, 30*time.Second) // a long lease: the heartbeat must not be what notices
	eng := newBlockingEngine()
	startWorker(t, b, worker.Config{Models: []worker.Model{textModel("m", 1)}}, map[string]worker.Engine{"m": eng})

	j := enqueue(t, b, job.KindChat, "m", chatInput("m", "first"))
	recv(t, eng.started, "the engine to start")
	start := time.Now()
	if _, err := b.Cancel(context.Background(), j.ID); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	err := recv(t, eng.ended, "the engine to be aborted")
	if !errors.Is(err, broker.ErrCanceled) {
		t.Errorf("engine context ended with %v, want broker.ErrCanceled", err)
	}
	// The lease is 30s (extended every 10s): only the cancellation watch can be this quick.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("engine aborted %v after the cancel, want at once", d)
	}
	if got := waitStatus(t, b, j.ID, job.StatusCanceled); got.Error != nil && got.Error.Code == "engine_error" {
		t.Errorf("canceled job got an engine error: %+v", got.Error)
	}
	// The slot is free again.
	enqueue(t, b, job.KindChat, "m", chatInput("m", "second"))
	if got := recv(t, eng.started, "the next job"); got != "second" {
		t.Errorf("next job = %q, want second", got)
	}
}

// TestDrain: on shutdown running jobs finish, queued jobs stay queued for other workers, and the
// worker leaves the registry; with a drain timeout too short for the running jobs, they go back
// to the queue without using an attempt.
func TestDrain(t *testing.T) {
	t.Run("running finish, queued stay", func(t *testing.T) {
		b := newBroker(t, 2*time.Second)
		eng := sim.New(sim.Config{Tokens: 20, TimeToFirstToken: 200 * time.Millisecond, InterTokenLatency: 10 * time.Millisecond})
		r := startWorker(t, b, worker.Config{Models: []worker.Model{textModel("m", 2)}, DrainTimeout: patience}, map[string]worker.Engine{"m": eng})
		var jobs []job.Job
		for i := range 4 {
			jobs = append(jobs, enqueue(t, b, job.KindChat, "m", chatInput("m", fmt.Sprint(i))))
		}
		waitStatus(t, b, jobs[0].ID, job.StatusRunning)
		waitStatus(t, b, jobs[1].ID, job.StatusRunning)
		r.shutdown(t)
		for i, j := range jobs {
			got, _ := b.Get(context.Background(), j.ID)
			want := job.StatusSucceeded
			if i >= 2 {
				want = job.StatusQueued
			}
			if got.Status != want {
				t.Errorf("job %d: %s, want %s", i, got.Status, want)
			}
		}
		if ws, _ := b.Workers(context.Background()); len(ws) != 0 {
			t.Errorf("workers after drain = %+v, want none", ws)
		}
	})
	t.Run("timeout releases", func(t *testing.T) {
		b := newBroker(t, 2*time.Second)
		eng := newBlockingEngine()
		r := startWorker(t, b, worker.Config{Models: []worker.Model{textModel("m", 2)}, DrainTimeout: 100 * time.Millisecond}, map[string]worker.Engine{"m": eng})
		a := enqueue(t, b, job.KindChat, "m", chatInput("m", "a"))
		c := enqueue(t, b, job.KindChat, "m", chatInput("m", "c"))
		recv(t, eng.started, "job a to start")
		recv(t, eng.started, "job c to start")
		r.shutdown(t)
		for _, j := range []job.Job{a, c} {
			got, _ := b.Get(context.Background(), j.ID)
			if got.Status != job.StatusQueued || got.Attempts != 0 {
				t.Errorf("job %s: %s after %d attempts, want queued again with none used", j.ID, got.Status, got.Attempts)
			}
		}
		for range 2 {
			if err := recv(t, eng.ended, "the engine to be stopped"); !strings.Contains(err.Error(), "draining") {
				t.Errorf("engine stopped with %v, want the drain", err)
			}
		}
	})
}

// TestSlotsRespected: a worker whose slots are all busy holds no queued job, so another worker
// runs it.
func TestSlotsRespected(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	busy := newBlockingEngine()
	startWorker(t, b, worker.Config{ID: "busy", Models: []worker.Model{textModel("m", 1)}}, map[string]worker.Engine{"m": busy})
	first := enqueue(t, b, job.KindChat, "m", chatInput("m", "first"))
	recv(t, busy.started, "the first job")
	second := enqueue(t, b, job.KindChat, "m", chatInput("m", "second"))
	time.Sleep(300 * time.Millisecond) // time for a (wrong) reserve to take it
	if got, _ := b.Get(context.Background(), second.ID); got.Status != job.StatusQueued {
		t.Fatalf("second job is %s on %q while the only slot is busy, want queued", got.Status, got.WorkerID)
	}
	startWorker(t, b, worker.Config{ID: "free", Models: []worker.Model{textModel("m", 1)}}, map[string]worker.Engine{"m": sim.New(sim.Config{})})
	got := waitStatus(t, b, second.ID, job.StatusSucceeded)
	if got.WorkerID != "free" {
		t.Errorf("second job ran on %q, want free", got.WorkerID)
	}
	if got, _ := b.Get(context.Background(), first.ID); got.Status != job.StatusRunning {
		t.Errorf("first job is %s, want still running", got.Status)
	}
}

// TestHandler: /metrics exposes the worker's metrics and /healthz its state.
func TestHandler(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	r := startWorker(t, b, worker.Config{Models: []worker.Model{textModel("m", 3)}}, map[string]worker.Engine{"m": sim.New(sim.Config{Tokens: 5})})
	j := enqueue(t, b, job.KindChat, "m", chatInput("m", "x"))
	waitStatus(t, b, j.ID, job.StatusSucceeded)
	srv := httptest.NewServer(r.w.Handler())
	defer srv.Close()

	body := get(t, srv.URL+"/metrics", http.StatusOK)
	for _, want := range []string{
		`neovratz_worker_jobs_total{model="m",outcome="succeeded"} 1`,
		`neovratz_worker_generated_tokens_total{model="m"} 5`,
		`neovratz_worker_slots{model="m"} 3`,
		`neovratz_worker_jobs_running{model="m"} 0`,
		`neovratz_worker_engine_duration_seconds_count{kind="chat",model="m"} 1`,
		`neovratz_worker_time_to_first_token_seconds_count{model="m"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var h worker.Health
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/healthz", http.StatusOK)), &h); err != nil || !h.OK || h.Engines["m"] != "ok" {
		t.Errorf("/healthz = %+v, %v", h, err)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

func TestNewChecksConfig(t *testing.T) {
	eng := sim.New(sim.Config{})
	b := worker.Broker(nil)
	tests := []struct {
		name    string
		models  []worker.Model
		engines map[string]worker.Engine
		want    string
	}{
		{"no models", nil, nil, "no models"},
		{"no slots", []worker.Model{{Name: "m", Kind: worker.KindText}}, map[string]worker.Engine{"m": eng}, "slots"},
		{"bad kind", []worker.Model{{Name: "m", Kind: "audio", Slots: 1}}, map[string]worker.Engine{"m": eng}, "kind"},
		{"no engine", []worker.Model{textModel("m", 1)}, nil, "no engine"},
		{"engine cannot", []worker.Model{{Name: "m", Kind: worker.KindImage, Slots: 1}}, map[string]worker.Engine{"m": engineFunc{}}, "cannot serve image"},
		{"twice", []worker.Model{textModel("m", 1), textModel("m", 1)}, map[string]worker.Engine{"m": eng}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := worker.New(worker.Config{ID: "w", Models: tc.models}, fakeBrokerForNew{b}, tc.engines, nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// fakeBrokerForNew stands in where New only checks that a broker was given.
type fakeBrokerForNew struct{ worker.Broker }

// TestDrainRequestedThroughRegistry: an operator's drain (the API marks the registry entry
// draining) stops the worker taking jobs; its running job finishes and it stays registered.
func TestDrainRequestedThroughRegistry(t *testing.T) {
	b := newBroker(t, 2*time.Second)
	eng := sim.New(sim.Config{Tokens: 10, InterTokenLatency: 30 * time.Millisecond})
	r := startWorker(t, b, worker.Config{ID: "w1", HeartbeatInterval: 50 * time.Millisecond, Models: []worker.Model{textModel("m", 1)}},
		map[string]worker.Engine{"m": eng})
	first := enqueue(t, b, job.KindChat, "m", chatInput("m", "first"))
	waitStatus(t, b, first.ID, job.StatusRunning)

	ws, err := b.Workers(context.Background())
	if err != nil || len(ws) != 1 {
		t.Fatalf("workers = %+v, %v", ws, err)
	}
	ws[0].Draining = true // what POST /v1/admin/workers/{id}/drain does
	if err := b.RegisterWorker(context.Background(), ws[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(patience)
	for !r.w.CheckHealth(context.Background()).Draining {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not notice the drain request")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := enqueue(t, b, job.KindChat, "m", chatInput("m", "second"))
	waitStatus(t, b, first.ID, job.StatusSucceeded)
	time.Sleep(200 * time.Millisecond)
	if got, _ := b.Get(context.Background(), second.ID); got.Status != job.StatusQueued {
		t.Errorf("job enqueued after the drain request is %s, want queued", got.Status)
	}
	ws, _ = b.Workers(context.Background())
	if len(ws) != 1 || !ws[0].Draining {
		t.Errorf("workers = %+v, want w1 still registered and draining", ws)
	}
}

// TestStreamInterval: with an interval, a fast engine's deltas reach the log in fewer, larger
// events — the first still at once — and join to the same text.
func TestStreamInterval(t *testing.T) {
	b := newBroker(t, 5*time.Second)
	eng := sim.New(sim.Config{Tokens: 40, TimeToFirstToken: 50 * time.Millisecond, InterTokenLatency: 5 * time.Millisecond})
	m := textModel("m", 1)
	m.StreamInterval = 50 * time.Millisecond
	startWorker(t, b, worker.Config{Models: []worker.Model{m}}, map[string]worker.Engine{"m": eng})
	j := enqueue(t, b, job.KindChat, "m", chatInput("m", "x"))
	j = waitStatus(t, b, j.ID, job.StatusSucceeded)
	var res inference.TextResult
	_ = json.Unmarshal(j.Result, &res)
	var text string
	var deltas []broker.Event
	for _, ev := range allEvents(t, b, j.ID) {
		if ev.Type == broker.EventDelta {
			var d inference.TextDelta
			_ = json.Unmarshal(ev.Data, &d)
			text += d.Text
			deltas = append(deltas, ev)
		}
	}
	if text != res.Choices[0].Text {
		t.Errorf("deltas join to %q, result %q", text, res.Choices[0].Text)
	}
	// 40 tokens over 195ms, written at most every 50ms after the first: about 5 events.
	if len(deltas) > 10 || len(deltas) < 2 {
		t.Errorf("%d delta events for 40 tokens, want a handful", len(deltas))
	}
	var first inference.TextDelta
	_ = json.Unmarshal(deltas[0].Data, &first)
	if strings.Contains(first.Text, " ") {
		t.Errorf("first event %q holds more than the first token: it waited", first.Text)
	}
}
