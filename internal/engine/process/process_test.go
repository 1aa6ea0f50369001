package process_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/engine/openaiup"
	"github.com/neovratz/neovratz/internal/engine/process"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

var (
	_ worker.TextEngine      = (*process.Engine)(nil)
	_ worker.EmbeddingEngine = (*process.Engine)(nil)
	_ worker.HealthChecker   = (*process.Engine)(nil)
)

// simserver builds testdata/simserver — a whole neovratz serving the sim engine on the port it
// is given — once per test binary: the real OpenAI-speaking program the engine manages.
func simserver(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "simserver")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/simserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build simserver: %v\n%s", err, out)
	}
	return bin
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("simserver wrote no pid file")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func start(t *testing.T, bin, pidfile string, reg prometheus.Registerer) *process.Engine {
	t.Helper()
	e, err := process.Start(process.Config{
		Name:        "sim-text",
		Command:     []string{bin, "-port", "{port}", "-model", "{model}", "-tokens", strconv.Itoa(simTokens), "-itl", "10ms", "-pidfile", pidfile},
		Model:       "sim-text",
		HealthPath:  "/v1/models/sim-text", // 200 once the server's worker serves the model
		MinBackoff:  50 * time.Millisecond,
		StopTimeout: 5 * time.Second,
		Upstream:    openaiup.Config{Slots: 4},
		Registerer:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatalf("engine not ready: %v", err)
	}
	return e
}

var chat = inference.TextRequest{Model: "sim-text", N: 1, Messages: []openai.Message{{Role: "user", Content: "hello"}}}

// simTokens is the length of the sim server's answers: 100 tokens 10 ms apart keep a request
// streaming for a second, so the kill after the third delta lands mid-answer even when a loaded
// machine stalls the worker and its event writer merges many tokens into one delta.
const simTokens = 100

// TestKillMidRequest kills the server while a request streams: the request fails as retryable,
// the engine restarts the server, and the same request then succeeds with the same answer.
// Close stops the server.
func TestKillMidRequest(t *testing.T) {
	bin := simserver(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	reg := prometheus.NewRegistry()
	e := start(t, bin, pidfile, reg)
	first := readPID(t, pidfile)
	os.Remove(pidfile)

	var deltas int
	_, err := e.GenerateText(context.Background(), chat, func(d inference.TextDelta) error {
		if deltas++; deltas == 3 {
			syscall.Kill(first, syscall.SIGKILL)
		}
		return nil
	})
	if !worker.IsRetryable(err) {
		t.Fatalf("request during the kill: %v, want a retryable error", err)
	}

	// Wait for the supervisor to start a new server (it writes the pid file once serving): a
	// request sent in the moment between the kill and the supervisor noticing it may still reach
	// the dying port, and fails retryable — the worker's retry covers that; this test checks
	// what follows the restart.
	second := readPID(t, pidfile)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := e.GenerateText(ctx, chat, func(inference.TextDelta) error { return nil })
	if err != nil {
		t.Fatalf("request after the restart: %v", err)
	}
	if res.Usage.CompletionTokens != simTokens {
		t.Errorf("answer after the restart: %+v", res.Usage)
	}
	if second == first || !alive(second) {
		t.Errorf("server pid %d → %d: want a new, live process", first, second)
	}
	if got := restarts(t, reg); got != 1 {
		t.Errorf("restarts = %v, want 1", got)
	}
	if err := e.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(second) {
		if time.Now().After(deadline) {
			t.Fatal("server still running after Close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.Health(context.Background()); err == nil {
		t.Error("Health after Close = nil")
	}
}

// restarts reads neovratz_worker_engine_restarts_total.
func restarts(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "neovratz_worker_engine_restarts_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no restarts metric")
	return 0
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"llama-server -m {model} --port {port}", []string{"llama-server", "-m", "{model}", "--port", "{port}"}, false},
		{`vllm serve "my model" --arg 'a b' x\ y`, []string{"vllm", "serve", "my model", "--arg", "a b", "x y"}, false},
		{`a "q\"uote" ''`, []string{"a", `q"uote`, ""}, false},
		{`a "open`, nil, true},
		{"  ", nil, true},
	}
	for _, tc := range tests {
		got, err := process.SplitCommand(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := process.Start(process.Config{}); err == nil {
		t.Error("Start without a command: nil error")
	}
	// A command that cannot start is retried, and requests wait (here: until their context ends).
	e, err := process.Start(process.Config{Command: []string{"/nonexistent/server"}, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.GenerateText(ctx, chat, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request while the server cannot start: %v, want the context's deadline", err)
	}
	if e.Health(context.Background()) == nil {
		t.Error("Health of a server that cannot start = nil")
	}
}
