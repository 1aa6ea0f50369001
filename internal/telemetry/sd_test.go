package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
)

// TestServiceDiscovery serves the http_sd answer from a real (embedded) broker's registry.
func TestServiceDiscovery(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	b, err := sqlitebroker.Open(ctx, filepath.Join(t.TempDir(), "broker.db"), broker.Config{Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	workers := []broker.WorkerInfo{
		{ID: "gpu1-a1b2c3", Hostname: "gpu1", Version: "v1.0.0", Models: []string{"llama-3.1-8b", "qwen3-8b"}, Slots: 8,
			Engine: "openai", MetricsAddr: "gpu1.internal:9090"},
		{ID: "gpu2-d4e5f6", Hostname: "gpu2", Models: []string{"sdxl"}, Slots: 2, MetricsAddr: "10.0.0.12:9090", Draining: true},
		{ID: "no-metrics", Models: []string{"m"}, Slots: 1},
		{ID: "unspecified", Models: []string{"m"}, Slots: 1, MetricsAddr: "0.0.0.0:9090"},
		{ID: "url", Models: []string{"m"}, Slots: 1, MetricsAddr: "http://evil.example/metrics"},
		{ID: "userinfo", Models: []string{"m"}, Slots: 1, MetricsAddr: "user@host:9090"},
		{ID: "port-0", Models: []string{"m"}, Slots: 1, MetricsAddr: "host:0"},
		{ID: "port-name", Models: []string{"m"}, Slots: 1, MetricsAddr: "host:http"},
		{ID: "v6", Hostname: "gpu3", Models: []string{"m"}, Slots: 1, MetricsAddr: "[fd00::3]:9090"},
	}
	for _, w := range workers {
		if err := b.RegisterWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(NewServiceDiscovery(b, nil))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []SDGroup
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := []SDGroup{
		{Targets: []string{"10.0.0.12:9090"}, Labels: map[string]string{
			"__meta_neovratz_worker_id": "gpu2-d4e5f6", "__meta_neovratz_hostname": "gpu2", "__meta_neovratz_engine": "",
			"__meta_neovratz_version": "", "__meta_neovratz_slots": "2", "__meta_neovratz_draining": "true",
			"__meta_neovratz_models": ",sdxl,"}},
		{Targets: []string{"[fd00::3]:9090"}, Labels: map[string]string{
			"__meta_neovratz_worker_id": "v6", "__meta_neovratz_hostname": "gpu3", "__meta_neovratz_engine": "",
			"__meta_neovratz_version": "", "__meta_neovratz_slots": "1", "__meta_neovratz_draining": "false",
			"__meta_neovratz_models": ",m,"}},
		{Targets: []string{"gpu1.internal:9090"}, Labels: map[string]string{
			"__meta_neovratz_worker_id": "gpu1-a1b2c3", "__meta_neovratz_hostname": "gpu1", "__meta_neovratz_engine": "openai",
			"__meta_neovratz_version": "v1.0.0", "__meta_neovratz_slots": "8", "__meta_neovratz_draining": "false",
			"__meta_neovratz_models": ",llama-3.1-8b,qwen3-8b,"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	// Prometheus wants [] rather than null when there is no worker.
	empty := httptest.NewServer(NewServiceDiscovery(listerFunc(func(context.Context) ([]broker.WorkerInfo, error) { return nil, nil }), nil))
	defer empty.Close()
	if body := get(t, empty.URL, 200); body != "[]\n" {
		t.Errorf("no workers: got %q, want []", body)
	}

	if body := do(t, "POST", srv.URL, 405); body == "" {
		t.Error("POST: empty body")
	}

	// A broker that cannot answer gives 503 and no detail (Prometheus keeps its last list).
	b.Close()
	if body := get(t, srv.URL, 503); body != "workers unavailable\n" {
		t.Errorf("closed broker: body %q", body)
	}
}

func TestGroupsDuplicateAddress(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ws := []broker.WorkerInfo{
		{ID: "new", MetricsAddr: "gpu1:9090", LastHeartbeat: t0.Add(time.Second)},
		{ID: "old", MetricsAddr: "gpu1:9090", LastHeartbeat: t0},
		{ID: "other", MetricsAddr: "GPU1:9091", LastHeartbeat: t0},
	}
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}} {
		in := []broker.WorkerInfo{ws[order[0]], ws[order[1]], ws[order[2]]}
		got := Groups(in)
		if len(got) != 2 || got[1].Labels["__meta_neovratz_worker_id"] != "new" {
			t.Errorf("order %v: got %+v, want GPU1:9091 and the newest worker on gpu1:9090", order, got)
		}
	}
}

func TestScrapeAddr(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"gpu1:9090", "gpu1:9090", true},
		{"gpu1.example.com.:9090", "gpu1.example.com.:9090", true},
		{"10.1.2.3:1", "10.1.2.3:1", true},
		{"[::1]:65535", "[::1]:65535", true},
		{"worker_1:9090", "worker_1:9090", true},
		{":9090", "", false},
		{"[::]:9090", "", false},
		{"0.0.0.0:9090", "", false},
		{"gpu1", "", false},
		{"gpu1:65536", "", false},
		{"gpu1:09090", "", false},
		{"gpu1:-1", "", false},
		{"gpu 1:9090", "", false},
		{"gpu1/metrics:9090", "", false},
		{"a..b:9090", "", false},
		{"http://gpu1:9090", "", false},
	}
	for _, tt := range tests {
		got, ok := scrapeAddr(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("scrapeAddr(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

type listerFunc func(context.Context) ([]broker.WorkerInfo, error)

func (f listerFunc) Workers(ctx context.Context) ([]broker.WorkerInfo, error) { return f(ctx) }

func get(t *testing.T, url string, status int) string { t.Helper(); return do(t, "GET", url, status) }

func do(t *testing.T, method, url string, status int) string {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body []byte
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d (%s)", method, url, resp.StatusCode, status, body)
	}
	return string(body)
}
