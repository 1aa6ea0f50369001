package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/redistest"
)

// TestChaos runs 500 jobs through Redis on 4 worker processes while SIGKILLing random workers
// and starting replacements. Every job must succeed with the right result, none may be completed
// twice (no two processes report completing it, and its log has one terminal status), and none
// may be lost.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const (
		jobs    = 500
		workers = 4
		kills   = 6
	)
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	lease := time.Second // a killed worker's jobs come back within about a second
	ctx := context.Background()
	b, closeBroker, err := openRedisBroker(ctx, url, prefix, lease, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker()
	spec := childSpec{redisURL: url, prefix: prefix, model: "chaos", slots: 4, tokens: 8, tokenTime: 5 * time.Millisecond,
		lease: lease, drain: 2 * time.Second}

	var ids []string
	for i := range jobs {
		input, _ := json.Marshal(chatInput("chaos", fmt.Sprintf("job number %d", i)))
		// Attempts to spare: a job may be on a killed worker more than once.
		j, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "chaos", Input: input, MaxAttempts: 20})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}

	log := newJobLog()
	n := 0
	start := func() *workerProcess {
		n++
		s := spec
		s.id = fmt.Sprintf("chaos-%d", n)
		return startProcess(t, s, log)
	}
	var live []*workerProcess
	for range workers {
		live = append(live, start())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range kills {
		time.Sleep(time.Duration(300+rng.IntN(400)) * time.Millisecond)
		i := rng.IntN(len(live))
		victim := live[i]
		victim.signal(t, syscall.SIGKILL)
		<-victim.done
		t.Logf("kill %d: SIGKILLed %s", k+1, victim.id)
		live[i] = start()
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		stats, err := b.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, s := range stats {
			busy += s.Depth + s.Running
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still queued or running after 2 minutes: %+v", stats)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range live {
		p.signal(t, syscall.SIGTERM)
	}
	for _, p := range live {
		<-p.done
		if p.err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want status 0", p.id, p.err)
		}
	}

	direct := sim.New(sim.Config{Tokens: spec.tokens})
	retried := 0
	for i, id := range ids {
		j, err := b.Get(ctx, id)
		if err != nil {
			t.Fatalf("job %d lost: %v", i, err)
		}
		if j.Status != job.StatusSucceeded {
			t.Errorf("job %d: %s (%v), want succeeded", i, j.Status, j.Error)
			continue
		}
		if j.Attempts > 1 {
			retried++
		}
		var got inference.TextResult
		_ = json.Unmarshal(j.Result, &got)
		want, _ := direct.GenerateText(ctx, inference.TextRequest{Model: "chaos", N: 1,
			Messages: []openai.Message{{Role: "user", Content: openai.Content(fmt.Sprintf("job number %d", i))}}},
			func(inference.TextDelta) error { return nil })
		if len(got.Choices) != 1 || got.Choices[0].Text != want.Choices[0].Text {
			t.Errorf("job %d: result %s, want the text %q", i, j.Result, want.Choices[0].Text)
		}
		// A process may be killed between its completion and its log line, so none is
		// fine; two would be a job reported twice.
		if by := log.succeeded[id]; len(by) > 1 {
			t.Errorf("job %d: completed by %v, want at most one worker", i, by)
		}
		evs, err := b.Events(ctx, id, "", 10000, 0)
		if err != nil {
			t.Fatal(err)
		}
		terminal := 0
		for _, ev := range evs {
			var st broker.StatusEvent
			if ev.Type == broker.EventStatus && json.Unmarshal(ev.Data, &st) == nil && st.Status.Terminal() {
				terminal++
			}
		}
		if terminal != 1 {
			t.Errorf("job %d: %d terminal status events, want 1", i, terminal)
		}
	}
	t.Logf("%d jobs succeeded on %d worker processes (%d SIGKILLed); %d needed more than one attempt", jobs, n, kills, retried)
	if ws, _ := b.Workers(ctx); len(ws) != 0 {
		// Killed workers stay until their TTL; the drained ones must be gone.
		for _, w := range ws {
			for _, p := range live {
				if w.ID == p.id {
					t.Errorf("%s is still registered after its drain", w.ID)
				}
			}
		}
	}
}

// TestSIGTERMDrain: a worker process that gets SIGTERM finishes its running jobs, leaves the
// queued ones for others, deregisters and exits 0.
func TestSIGTERMDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	ctx := context.Background()
	b, closeBroker, err := openRedisBroker(ctx, url, prefix, 5*time.Second, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker()
	var jobs []job.Job
	for i := range 6 {
		jobs = append(jobs, enqueue(t, b, job.KindChat, "drain", chatInput("drain", fmt.Sprint(i))))
	}
	p := startProcess(t, childSpec{id: "drainer", redisURL: url, prefix: prefix, model: "drain", slots: 2, tokens: 30,
		tokenTime: 20 * time.Millisecond, lease: 5 * time.Second, drain: 20 * time.Second}, nil)
	waitStatus(t, b, jobs[0].ID, job.StatusRunning)
	waitStatus(t, b, jobs[1].ID, job.StatusRunning)
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(patience):
		t.Fatal("worker process did not exit after SIGTERM")
	}
	if p.err != nil {
		t.Errorf("exit: %v, want status 0", p.err)
	}
	for i, j := range jobs {
		got, _ := b.Get(ctx, j.ID)
		want := job.StatusQueued
		if i < 2 {
			want = job.StatusSucceeded
		}
		if got.Status != want || (want == job.StatusQueued && got.Attempts != 0) {
			t.Errorf("job %d: %s after %d attempts, want %s", i, got.Status, got.Attempts, want)
		}
	}
	if ws, _ := b.Workers(ctx); len(ws) != 0 {
		t.Errorf("registry after the drain: %+v, want empty", ws)
	}
}
