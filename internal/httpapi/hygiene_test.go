package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestRequestErrors(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *Config) {
		c.MaxBodyBytes = 1024
		c.WorkerHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/chat/completions", `{"model":`, 400, ""},
		{"wrong type", "POST", "/v1/chat/completions", `{"model":"text","messages":"hi"}`, 400, ""},
		{"oversized body", "POST", "/v1/chat/completions", `{"model":"text","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "request_too_large"},
		{"unknown model", "POST", "/v1/completions", `{"model":"nope","prompt":"x"}`, 404, "model_not_found"},
		{"unknown path", "GET", "/v1/nothing", "", 404, "unknown_url"},
		{"wrong method", "PUT", "/v1/chat/completions", "", 405, "method_not_allowed"},
		{"unknown job", "GET", "/v1/jobs/job_nope", "", 404, "job_not_found"},
		{"panic", "GET", "/v1/worker/jobs", "", 500, "internal_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(t, tc.method, tc.path, e.admin, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if got := errCode(t, body); tc.code != "" && got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
			if strings.Contains(body, "boom") {
				t.Errorf("an internal error's text reached the client: %s", body)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"panic":"boom"`) {
		t.Error("the panic is not in the log")
	}

	t.Run("request id", func(t *testing.T) {
		resp, _ := e.do(t, "GET", "/healthz", "", "", "X-Request-Id", "abc-123")
		if resp.Header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("X-Request-Id = %q, want the client's", resp.Header.Get("X-Request-Id"))
		}
		resp, _ = e.do(t, "GET", "/healthz", "", "", "X-Request-Id", "bad id with spaces")
		if id := resp.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
			t.Errorf("X-Request-Id = %q, want a generated one", id)
		}
		if !strings.Contains(e.logs.String(), `"request_id":"abc-123"`) {
			t.Error("the request id is not in the access log")
		}
	})

	t.Run("no live worker", func(t *testing.T) {
		// "parked" is known to the broker (it has a queue) but no worker serves it.
		if _, _, err := e.b.Enqueue(context.Background(), job.Job{Kind: job.KindCompletion, Model: "parked", Input: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		resp, body := e.do(t, "POST", "/v1/completions", e.admin, `{"model":"parked","prompt":"x"}`)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || errCode(t, body) != "model_unavailable" {
			t.Fatalf("%d %s %v, want 503 with Retry-After", resp.StatusCode, body, resp.Header)
		}
	})

	t.Run("keys never logged", func(t *testing.T) {
		if strings.Contains(e.logs.String(), e.admin) || strings.Contains(e.logs.String(), e.admin[strings.LastIndex(e.admin, "_")+1:]) {
			t.Error("a key's secret is in the log")
		}
	})
}

func TestQueueFull(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnvWith(t, kind, broker.Config{QueueCap: 1})
		// No worker serves "parked"; one queued job fills its queue.
		if _, _, err := e.b.Enqueue(context.Background(), job.Job{Kind: job.KindChat, Model: "parked", Input: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		resp, body := e.do(t, "POST", "/v1/jobs", e.admin, `{"kind":"chat","model":"parked","input":{"messages":[{"role":"user","content":"x"}]}}`)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || errCode(t, body) != "queue_full" {
			t.Fatalf("%d %s %v, want 429 queue_full with Retry-After", resp.StatusCode, body, resp.Header)
		}
	})
}

func brokerFilterRunning() broker.ListFilter { return broker.ListFilter{Status: job.StatusRunning} }

func TestDisconnectAndTimeout(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *Config) { c.SyncTimeout = 400 * time.Millisecond })
		for _, stream := range []bool{true, false} {
			name := map[bool]string{true: "stream", false: "whole"}[stream]
			t.Run("disconnect "+name, func(t *testing.T) {
				canceledBefore := e.worker.count("slow", "canceled")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				body := `{"model":"slow","messages":[{"role":"user","content":"hi"}],"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
				req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.admin)
				var id string
				done := make(chan struct{})
				go func() {
					defer close(done)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return
					}
					id = resp.Header.Get("X-Neovratz-Job-Id")
					sc := bufio.NewScanner(resp.Body)
					for sc.Scan() {
						if strings.Contains(sc.Text(), `"content":"`) {
							cancel() // the client goes away mid-generation
						}
					}
					resp.Body.Close()
				}()
				if !stream {
					// A whole response sends nothing until the end: find the job, wait for it to
					// run, then hang up.
					waitFor(t, "the slow job to run", func() bool {
						jobs, _, _ := e.b.List(context.Background(), brokerFilterRunning())
						for _, j := range jobs {
							if j.Model == "slow" {
								id = j.ID
								return true
							}
						}
						return false
					})
					cancel()
				}
				<-done
				if id == "" {
					t.Fatal("no job id")
				}
				waitStatus(t, e, id, job.StatusCanceled)
				waitFor(t, "the worker to abort the job", func() bool { return e.worker.count("slow", "canceled") > canceledBefore })
			})
		}
		t.Run("timeout", func(t *testing.T) {
			resp, body := e.do(t, "POST", "/v1/chat/completions", e.admin, `{"model":"slow","messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != 504 || errCode(t, body) != "timeout" {
				t.Fatalf("%d %s, want 504", resp.StatusCode, body)
			}
			waitStatus(t, e, resp.Header.Get("X-Neovratz-Job-Id"), job.StatusCanceled)
		})
	})
}

// TestOpenAPI checks that /openapi.json documents exactly the routes the server has: every
// documented operation reaches a handler, and the list matches the golden file.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *Config) {
		c.WorkerHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	})
	resp, body := e.do(t, "GET", "/openapi.json", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /openapi.json: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: %v", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method, op := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
			if op["responses"] == nil || op["summary"] == "" {
				t.Errorf("%s %s: no responses or summary", method, path)
			}
			// Every documented operation reaches a handler: the mux's own 404/405 never answers.
			concrete := strings.NewReplacer("{id}", "x", "{job}", "x", "{file}", "0.png").Replace(path)
			r, b := e.do(t, strings.ToUpper(method), concrete, e.admin, "")
			if r.StatusCode == 404 || r.StatusCode == 405 {
				if c := errCode(t, b); c == "unknown_url" || c == "method_not_allowed" {
					t.Errorf("%s %s is documented but not served", method, path)
				}
			}
		}
	}
	slices.Sort(ops)
	got := strings.Join(ops, "\n") + "\n"
	golden := "testdata/routes.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("documented routes changed (run with -update if on purpose):\ngot:\n%s\nwant:\n%s", got, want)
	}
	// The route table is what both the mux and the document are built from: check the table
	// holds nothing undocumented.
	if len(e.api.routes) != len(ops) {
		t.Errorf("%d routes, %d documented operations", len(e.api.routes), len(ops))
	}
	if r, _ := e.do(t, "GET", "/v1/worker/anything", e.admin, ""); r.StatusCode != 204 {
		t.Errorf("worker mount: %d, want the mounted handler's 204", r.StatusCode)
	}
	_, infer := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}})
	if r, _ := e.do(t, "GET", "/v1/worker/anything", infer, ""); r.StatusCode != 403 {
		t.Errorf("worker mount with an inference key: %d, want 403", r.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.do(t, "POST", "/v1/chat/completions", e.admin, chatBody)
	e.do(t, "POST", "/v1/chat/completions", e.admin, `{"model":"text","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	// Jobs wait for a model no live worker serves: its worker figures are present, as zeros.
	if _, _, err := e.b.Enqueue(context.Background(), job.Job{Kind: job.KindChat, Model: "orphan", Input: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do(t, "GET", "/metrics", e.admin, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`neovratz_http_requests_total{code="200",method="POST",route="POST /v1/chat/completions"} 2`,
		`neovratz_jobs_enqueued_total{kind="chat",model="text"} 2`,
		`neovratz_jobs_finished_total{kind="chat",model="text",status="succeeded"} 2`,
		`neovratz_time_to_first_token_seconds_count{model="text"} 2`,
		`neovratz_generated_tokens_total{model="text"} 8`,
		`neovratz_prompt_tokens_total{model="text"} ` + strconv.Itoa(2*expectedChat(t, "hi", 0, 0).Usage.PromptTokens),
		`neovratz_model_workers{model="text",state="serving"} 1`,
		`neovratz_model_workers{model="text",state="draining"} 0`,
		`neovratz_model_slots{model="text",state="serving"} 20`, // the test worker's slots, all models
		`neovratz_model_workers{model="orphan",state="serving"} 0`,
		`neovratz_model_slots{model="orphan",state="serving"} 0`,
		`neovratz_queue_depth{model="orphan"} 1`,
		`neovratz_broker_up 1`,
		`neovratz_rejections_total{reason="queue_full"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsScope checks who may read /metrics and the workers' service discovery: a key
// with the metrics scope or the admin scope, nobody else; everyone when auth is off.
func TestMetricsScope(t *testing.T) {
	e := newEnv(t, "sqlite")
	_, metricsOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeMetrics}})
	_, adminOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeAdmin}})
	_, inferOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}})
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"metrics without key", "GET", "/metrics", "", 401},
		{"metrics with an inference key", "GET", "/metrics", inferOnly, 403},
		{"metrics with a metrics key", "GET", "/metrics", metricsOnly, 200},
		{"metrics with an admin key", "GET", "/metrics", adminOnly, 200},
		{"discovery without key", "GET", "/v1/admin/service-discovery", "", 401},
		{"discovery with an inference key", "GET", "/v1/admin/service-discovery", inferOnly, 403},
		{"discovery with a metrics key", "GET", "/v1/admin/service-discovery", metricsOnly, 200},
		{"discovery with an admin key", "GET", "/v1/admin/service-discovery", adminOnly, 200},
		// The metrics scope reads; it administers nothing and runs nothing.
		{"keys with a metrics key", "GET", "/v1/admin/keys", metricsOnly, 403},
		{"workers with a metrics key", "GET", "/v1/admin/workers", metricsOnly, 403},
		{"inference with a metrics key", "POST", "/v1/chat/completions", metricsOnly, 403},
		{"health needs no key", "GET", "/readyz", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = chatBody
			}
			resp, got := e.do(t, tc.method, tc.path, tc.token, body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%.200s), want %d", resp.StatusCode, got, tc.status)
			}
		})
	}

	// The answer is telemetry.ServiceDiscovery's: the worker's details as __meta_ labels only.
	resp, body := e.do(t, "GET", "/v1/admin/service-discovery", metricsOnly, "")
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(body), &groups); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("service discovery: %v, %q: %s", err, resp.Header.Get("Content-Type"), body)
	}
	if len(groups) != 1 || len(groups[0].Targets) != 1 || groups[0].Targets[0] != "127.0.0.1:9999" ||
		groups[0].Labels["__meta_neovratz_worker_id"] != e.worker.id {
		t.Fatalf("service discovery = %s", body)
	}
	for name := range groups[0].Labels {
		if !strings.HasPrefix(name, "__meta_neovratz_") {
			t.Errorf("service discovery sets label %q: only __meta_neovratz_* labels, which the scrape config picks from", name)
		}
	}

	open := newEnv(t, "sqlite", func(c *Config) { c.AuthDisabled = true })
	for _, path := range []string{"/metrics", "/v1/admin/service-discovery"} {
		if resp, body := open.do(t, "GET", path, "", ""); resp.StatusCode != 200 {
			t.Errorf("auth off: GET %s: %d %.200s, want 200", path, resp.StatusCode, body)
		}
	}
}

// TestShutdownFinishesStreams starts a stream, then shuts the HTTP server down gracefully: the
// stream runs to its end ([DONE]) before Shutdown returns.
func TestShutdownFinishesStreams(t *testing.T) {
	e := newEnv(t, "sqlite")
	srv := &http.Server{Handler: e.api.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"medium","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 10 || lines[len(lines)-1] != "data: [DONE]" {
		t.Fatalf("stream cut short by the shutdown: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
