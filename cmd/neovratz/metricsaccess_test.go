package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAdvertisedMetricsAddr(t *testing.T) {
	tests := []struct {
		listen, advertise, host, want string
	}{
		{"0.0.0.0:9090", "", "gpu1", "gpu1:9090"},
		{":9090", "", "gpu1", "gpu1:9090"},
		{"10.0.0.5:9090", "", "gpu1", "10.0.0.5:9090"},
		{"0.0.0.0:9090", "gpu1.internal:19090", "container-3f2a", "gpu1.internal:19090"},
		{"10.0.0.5:9090", "203.0.113.7:9090", "gpu1", "203.0.113.7:9090"},
		{"", "", "gpu1", ""},
	}
	for _, tt := range tests {
		cfg := workerConfig{MetricsAddr: tt.listen, AdvertiseMetricsAddr: tt.advertise}
		if got := cfg.advertisedMetricsAddr(tt.host); got != tt.want {
			t.Errorf("--metrics-addr %q --advertise-metrics-addr %q on %s: got %q, want %q", tt.listen, tt.advertise, tt.host, got, tt.want)
		}
	}

	path := writeConfig(t, "redis-url: redis://127.0.0.1:1/0\nmodels: [{name: a, kind: text, slots: 1, engine: sim}]\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--advertise-metrics-addr", "gpu1:9090"}, "needs --metrics-addr"},
		{[]string{"--metrics-addr", ":9090", "--advertise-metrics-addr", "0.0.0.0:9090"}, "unspecified"},
		{[]string{"--metrics-addr", ":9090", "--advertise-metrics-addr", "[::]:9090"}, "unspecified"},
		{[]string{"--metrics-addr", ":9090", "--advertise-metrics-addr", "gpu1"}, "host:port"},
		{[]string{"--metrics-addr", ":9090", "--advertise-metrics-addr", ":9090"}, "host:port"},
		{[]string{"--metrics-addr", ":9090", "--advertise-metrics-addr", "gpu1:0"}, "1-65535"},
	} {
		code, _, stderr := run(t, env{}, append([]string{"worker", "--config", path}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, "--advertise-metrics-addr") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming the flag and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// TestMetricsAccess runs `neovratz serve` with authentication, a `neovratz worker` pulling from
// it over HTTP that advertises its metrics address, and Prometheus's view of both: the API's
// /metrics and service discovery with a metrics-scope key made by `neovratz keys create`, the
// worker's /metrics on its own listener, and `neovratz healthcheck` on each.
func TestMetricsAccess(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	serveConfig := filepath.Join(dir, "serve.yaml")
	workerConfig := filepath.Join(dir, "worker.yaml")
	for path, s := range map[string]string{
		serveConfig:  "models: [{name: local-sim, kind: text, slots: 2, engine: sim, sim: {tokens: 2}}]\n",
		workerConfig: "models: [{name: remote-sim, kind: text, slots: 3, engine: sim, sim: {tokens: 2}}]\n",
	} {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const admin = "nvk_admin_0123456789abcdefghij"
	srv := start(t, env{"NEOVRATZ_ADMIN_KEY": admin}, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--config", serveConfig)
	base := "http://" + srv.addr

	newKey := func(scopes string) string {
		t.Helper()
		code, out, stderr := run(t, env{}, "keys", "create", "--name", scopes, "--scopes", scopes, "--data-dir", data)
		if code != 0 {
			t.Fatalf("keys create --scopes %s: exit %d: %s %s", scopes, code, out, stderr)
		}
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "nvk_") {
				return f
			}
		}
		t.Fatalf("keys create --scopes %s printed no key: %s", scopes, out)
		return ""
	}
	metricsKey, workerKey := newKey("metrics"), newKey("worker")

	wrk := start(t, env{"NEOVRATZ_TOKEN": workerKey}, "worker", "--config", workerConfig, "--api", base,
		"--metrics-addr", "127.0.0.1:0", "--advertise-metrics-addr", "gpu1.example:9090", "--drain-timeout", "5s")

	// Prometheus's service discovery finds the worker at the address it advertised.
	var sd string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var code int
		code, sd = getAuth(t, base+"/v1/admin/service-discovery", metricsKey)
		if code == 200 && strings.Contains(sd, `"targets":["gpu1.example:9090"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service discovery never listed the worker at gpu1.example:9090: %d %s", code, sd)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var groups []struct{ Labels map[string]string }
	if err := json.Unmarshal([]byte(sd), &groups); err != nil || len(groups) != 1 || groups[0].Labels["__meta_neovratz_models"] != ",remote-sim," {
		t.Errorf("service discovery = %s (%v)", sd, err)
	}

	for _, tc := range []struct {
		path, token string
		code        int
	}{
		{"/metrics", "", 401},
		{"/metrics", workerKey, 403},
		{"/metrics", admin, 200},
		{"/v1/admin/service-discovery", "", 401},
		{"/v1/admin/service-discovery", workerKey, 403},
		{"/v1/admin/keys", metricsKey, 403},
	} {
		if code, body := getAuth(t, base+tc.path, tc.token); code != tc.code {
			t.Errorf("GET %s with key %.12s: %d %.200s, want %d", tc.path, tc.token, code, body, tc.code)
		}
	}
	code, metrics := getAuth(t, base+"/metrics", metricsKey)
	for _, want := range []string{
		`neovratz_model_workers{model="remote-sim",state="serving"} 1`,
		`neovratz_model_slots{model="remote-sim",state="serving"} 3`,
		`neovratz_model_workers{model="local-sim",state="serving"} 1`,
		// The built-in worker's own figures, on the same /metrics: no name clashes with the
		// API's any more.
		`neovratz_worker_slots{model="local-sim"} 2`,
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("serve's /metrics (%d) lacks %s", code, want)
		}
	}

	// The worker's /metrics is on its own listener, without a key.
	if code, m := get(t, "http://"+wrk.addr+"/metrics"); code != 200 || !strings.Contains(m, `neovratz_worker_slots{model="remote-sim"} 3`) {
		t.Errorf("worker /metrics: %d, lacks its slots", code)
	}

	for _, url := range []string{base + "/readyz", "http://" + wrk.addr + "/healthz"} {
		if code, stdout, stderr := run(t, env{}, "healthcheck", "--url", url); code != 0 {
			t.Errorf("healthcheck %s: exit %d; stdout %q stderr %q", url, code, stdout, stderr)
		}
	}
	if code := wrk.stop(t); code != 0 {
		t.Errorf("worker exit %d after SIGTERM, want 0; logs %s", code, wrk.logs)
	}
}
