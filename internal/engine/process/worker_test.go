package process_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker"
)

// TestJobSurvivesEngineCrash: a worker runs a job on a managed server; the server is killed
// mid-job. The job fails retryable, goes back to the queue, runs again on the restarted server
// and completes.
func TestJobSurvivesEngineCrash(t *testing.T) {
	bin := simserver(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	e := start(t, bin, pidfile, nil)
	pid := readPID(t, pidfile)

	ctx := context.Background()
	b, err := sqlitebroker.Open(ctx, filepath.Join(t.TempDir(), "broker.db"),
		broker.Config{Lease: 5 * time.Second, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, err := worker.New(worker.Config{ID: "w", Models: []worker.Model{{Name: "sim-text", Kind: worker.KindText, Engine: "process", Slots: 1}}},
		b, map[string]worker.Engine{"sim-text": e}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()

	j, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "sim-text", Input: json.RawMessage(`{"messages":[{"role":"user","content":"hello"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the server once the job has streamed something.
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, _ := b.Events(ctx, j.ID, "", 100, 0)
		deltas := 0
		for _, ev := range evs {
			if ev.Type == broker.EventDelta {
				deltas++
			}
		}
		if deltas > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never streamed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.Remove(pidfile)
	syscall.Kill(pid, syscall.SIGKILL)

	for {
		got, err := b.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == job.StatusSucceeded {
			if got.Attempts != 2 {
				t.Errorf("attempts = %d, want 2 (the crash, then the retry)", got.Attempts)
			}
			var res inference.TextResult
			if err := json.Unmarshal(got.Result, &res); err != nil || res.Usage.CompletionTokens != simTokens {
				t.Errorf("result %s: %v", got.Result, err)
			}
			break
		}
		if got.Status.Terminal() || time.Now().After(deadline.Add(30*time.Second)) {
			t.Fatalf("job %s (%v) after %d attempts, want succeeded", got.Status, got.Error, got.Attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if readPID(t, pidfile) == pid {
		t.Error("the server was not restarted")
	}
}
