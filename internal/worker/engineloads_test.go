package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neovratz/neovratz/internal/worker"
)

// TestEngineLoads: load times and load failures, per model, on the registry given.
func TestEngineLoads(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, err := worker.NewEngineLoads(reg)
	if err != nil {
		t.Fatal(err)
	}
	l.Loaded("a", 1500*time.Millisecond)
	l.Failed("b")
	l.Failed("b")
	l.Loaded("c", time.Second)
	l.Loaded("c", 250*time.Millisecond) // loaded again: the gauge holds the last load
	want := `
# HELP neovratz_worker_engine_load_failures_total Times the model's engine failed to load (a model file the engine cannot load, a managed server that never became healthy).
# TYPE neovratz_worker_engine_load_failures_total counter
neovratz_worker_engine_load_failures_total{model="a"} 0
neovratz_worker_engine_load_failures_total{model="b"} 2
neovratz_worker_engine_load_failures_total{model="c"} 0
# HELP neovratz_worker_engine_load_seconds Time the model's engine took to load at its last load: the native engine opening the model file, a managed server starting until healthy.
# TYPE neovratz_worker_engine_load_seconds gauge
neovratz_worker_engine_load_seconds{model="a"} 1.5
neovratz_worker_engine_load_seconds{model="c"} 0.25
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	// One set per registry: a second is refused rather than silently not exported.
	if _, err := worker.NewEngineLoads(reg); err == nil {
		t.Error("registering the load metrics twice on one registry: no error")
	}
	if _, err := worker.NewEngineLoads(nil); err != nil {
		t.Errorf("no registry: %v", err)
	}
}
