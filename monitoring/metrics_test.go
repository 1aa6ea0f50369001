package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/telemetry"
	"github.com/neovratz/neovratz/internal/worker"
)

// stack is a real API and a real worker in this process, each with its own registry built as
// cmd/neovratz builds them (telemetry.NewRegistry: Go and process collectors, then the
// component's own), on the embedded broker and the sim engine.
type stack struct {
	api, worker *httptest.Server // the API's handler; the worker's /metrics handler
	workerAddr  string
}

// failingEngine is a text engine whose every job fails, so that the failure metrics appear.
type failingEngine struct{}

func (failingEngine) GenerateText(context.Context, inference.TextRequest, func(inference.TextDelta) error) (inference.TextResult, error) {
	return inference.TextResult{}, errors.New("engine crashed")
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	b, err := sqlitebroker.Open(ctx, filepath.Join(t.TempDir(), "broker.db"), broker.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	api, err := httpapi.New(httpapi.Config{Broker: b, Logger: logger, Registry: telemetry.NewRegistry(), AuthDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	s := &stack{api: httptest.NewServer(api.Handler())}
	t.Cleanup(s.api.Close)

	// The worker's metrics server must exist before the worker registers its address.
	var handler http.Handler
	s.worker = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(s.worker.Close)
	s.workerAddr = strings.TrimPrefix(s.worker.URL, "http://")

	reg := telemetry.NewRegistry()
	gpus := telemetry.NewGPUCollector(logger) // no GPU here: registers, serves nothing
	t.Cleanup(func() { gpus.Close() })
	reg.MustRegister(gpus)
	// Tokens apart in time, so the API sees more than one delta and observes inter-token latency.
	eng := sim.New(sim.Config{Tokens: 4, InterTokenLatency: 20 * time.Millisecond})
	models := []worker.Model{
		{Name: "sim-text", Kind: worker.KindText, Engine: "sim", Slots: 4},
		{Name: "sim-embed", Kind: worker.KindEmbedding, Engine: "sim", Slots: 1},
		{Name: "sim-image", Kind: worker.KindImage, Engine: "sim", Slots: 1},
		{Name: "broken", Kind: worker.KindText, Engine: "failing", Slots: 1},
	}
	engines := map[string]worker.Engine{"sim-text": eng, "sim-embed": eng, "sim-image": eng, "broken": failingEngine{}}
	w, err := worker.New(worker.Config{ID: "monitoring-test", Hostname: "localhost", Version: "test", MetricsAddr: s.workerAddr,
		Models: models, DrainTimeout: time.Second}, b, engines, logger, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	handler = w.Handler()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, err := b.Workers(ctx)
		if err == nil && len(ws) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker did not register: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// post sends a JSON request to the API and returns the status and body.
func (s *stack) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(s.api.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// traffic sends one request of every kind, plus one that fails on the engine, so that the
// labelled series (which appear at their first observation) exist.
func (s *stack) traffic(t *testing.T) {
	t.Helper()
	for _, r := range []struct {
		path, body string
		status     int
	}{
		{"/v1/chat/completions", `{"model":"sim-text","messages":[{"role":"user","content":"hi"}]}`, 200},
		{"/v1/chat/completions", `{"model":"sim-text","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 200},
		{"/v1/completions", `{"model":"sim-text","prompt":"once upon"}`, 200},
		{"/v1/embeddings", `{"model":"sim-embed","input":"hello"}`, 200},
		{"/v1/images/generations", `{"model":"sim-image","prompt":"a cat","size":"64x64","steps":2,"response_format":"b64_json"}`, 200},
		{"/v1/chat/completions", `{"model":"broken","messages":[{"role":"user","content":"hi"}]}`, 0},
	} {
		status, body := s.post(t, r.path, r.body)
		if r.status != 0 && status != r.status {
			t.Fatalf("POST %s: %d %s", r.path, status, body)
		}
		if r.status == 0 && status < 400 {
			t.Fatalf("POST %s to the failing engine: %d %s, want an error", r.path, status, body)
		}
	}
}

// scrape reads url's exposition as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mfs
}

// TestMetricsExist checks that every metric the alerts and dashboards name is served by a
// real API or worker after ordinary traffic, and lints both expositions with promlint.
func TestMetricsExist(t *testing.T) {
	s := startStack(t)
	s.traffic(t)
	apiMFs := scrape(t, s.api.URL+"/metrics")
	workerMFs := scrape(t, s.worker.URL+"/metrics")

	served := map[string]string{} // name → type, with _bucket, _sum, _count for histograms
	add := func(mfs map[string]*dto.MetricFamily) {
		for name, mf := range mfs {
			served[name] = mf.GetType().String()
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					served[name+suffix] = "HISTOGRAM"
				}
			}
		}
	}
	add(apiMFs)
	add(workerMFs)
	// No machine that runs the tests has a GPU, so the GPU collector serves nothing here; its
	// names come from the collector itself (its test checks them against what it collects).
	for _, name := range telemetry.GPUMetricNames() {
		served[name] = "GPU"
	}
	// Engines with metrics of their own need more than this process can run (the managed
	// process engine needs an engine program to start): their names are read from the
	// metric definitions in the engines' source.
	for _, name := range engineMetricNames(t) {
		if _, ok := served[name]; !ok {
			served[name] = "engine"
		}
	}
	// Series Prometheus makes itself.
	for _, name := range []string{"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"} {
		served[name] = "prometheus"
	}

	for _, e := range promExprs(t) {
		for _, name := range metricNames(e.expr) {
			if _, ok := served[name]; !ok {
				t.Errorf("%s uses %s, which neither the API nor the worker serves", e.where, name)
			}
		}
	}

	for where, mfs := range map[string]map[string]*dto.MetricFamily{"API": apiMFs, "worker": workerMFs} {
		var list []*dto.MetricFamily
		for _, mf := range mfs {
			list = append(list, mf)
		}
		problems, err := promlint.NewWithMetricFamilies(list).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("promlint, %s exposition: %s: %s", where, p.Metric, p.Text)
		}
	}

	// One name, one meaning: apart from the runtime's own metrics, no name is served by both
	// processes (serve puts both on one /metrics, and a query without a job label would mix
	// them).
	for name, mf := range apiMFs {
		if other, ok := workerMFs[name]; ok && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("both the API and the worker serve %s (API: %q; worker: %q)", name, mf.GetHelp(), other.GetHelp())
		}
	}
}

// metricNames returns the metric names an expression selects: identifiers that are not
// functions, keywords, label names or strings. neovratz's metrics all start with a known
// prefix, so it looks for those and for Prometheus's own series.
func metricNames(e string) []string {
	e = quoted.ReplaceAllString(e, `""`)
	var out []string
	for _, m := range metricName.FindAllString(e, -1) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricName = regexp.MustCompile(`\b(?:neovratz|go|process)_[a-zA-Z0-9_:]+\b|\bup\b|\bALERTS\b`)
)

func TestMetricNames(t *testing.T) {
	got := metricNames(`sum by (route) (rate(neovratz_http_requests_total{job="neovratz-api", code=~"5.."}[5m])) / up{job="x"} and on (model) neovratz_queue_depth > 0 or count(ALERTS{alertname="neovratz_fake"})`)
	want := []string{"neovratz_http_requests_total", "up", "neovratz_queue_depth", "ALERTS"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestServiceDiscoveryRoute checks that the service discovery URL of prometheus.yml is a route
// of the real API that answers the http_sd format with the worker's metrics address.
func TestServiceDiscoveryRoute(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			HTTPSDConfs []struct {
				URL string `yaml:"url"`
			} `yaml:"http_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join("prometheus", "prometheus.yml"), &cfg)
	var sdURL string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "neovratz-worker" && len(sc.HTTPSDConfs) == 1 {
			sdURL = sc.HTTPSDConfs[0].URL
		}
	}
	const prefix = "http://neovratz-api:8080"
	if !strings.HasPrefix(sdURL, prefix+"/") {
		t.Fatalf("neovratz-worker job: service discovery URL %q does not start with %s/", sdURL, prefix)
	}
	s := startStack(t)
	resp, err := http.Get(s.api.URL + strings.TrimPrefix(sdURL, prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s, %v", sdURL, resp.Status, err)
	}
	if len(groups) != 1 || fmt.Sprint(groups[0].Targets) != "["+s.workerAddr+"]" {
		t.Errorf("service discovery answered %+v, want the worker at %s", groups, s.workerAddr)
	}
}

// engineMetricNames returns the metric names defined (Name: "neovratz_…") in the engines'
// non-test sources.
func engineMetricNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "internal", "engine", "*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricDef.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
	}
	return names
}

var metricDef = regexp.MustCompile(`Name:\s*"(neovratz_[a-z0-9_]+)"`)
