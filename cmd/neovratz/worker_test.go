package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseModels(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" = valid
	}{
		{"valid", `models:
  - {name: a, kind: text, slots: 2, engine: sim, sim: {tokens: 3, inter-token-latency: 10ms}, limits: {max-tokens: 9}, stream-interval: 25ms}
  - {name: b, kind: embedding, slots: 1, engine: openai, openai: {base-url: "http://127.0.0.1:8000/v1"}}`, ""},
		{"flags only", "redis-url: redis://x:1/0\n", ""},
		{"unknown key", "models: [{name: a, kind: text, slots: 1, engine: sim, gpus: 2}]", `unknown key gpus`},
		{"unknown engine key", "models: [{name: a, kind: text, slots: 1, engine: sim, sim: {speed: 2}}]", `unknown key speed`},
		{"bad duration", "models: [{name: a, kind: text, slots: 1, engine: sim, sim: {time-to-first-token: soon}}]", `"soon" is not a duration`},
		{"no name", "models: [{kind: text, slots: 1, engine: sim}]", "models[0]: name: is required"},
		{"bad kind", "models: [{name: a, kind: audio, slots: 1, engine: sim}]", "models[0] (a): kind: must be text, image or embedding"},
		{"no slots", "models: [{name: a, kind: text, engine: sim}]", "models[0] (a): slots: must be at least 1"},
		{"no engine", "models: [{name: a, kind: text, slots: 1}]", "models[0] (a): engine: is required"},
		{"unknown engine", "models: [{name: a, kind: text, slots: 1, engine: magic}]", `engine: must be one of llama, diffusion, openai, image, process, sim (got "magic")`},
		{"settings of another engine", "models: [{name: a, kind: text, slots: 1, engine: sim, openai: {base-url: 'http://x'}}]", `openai: is set but the engine is "sim"`},
		{"openai without url", "models: [{name: a, kind: text, slots: 1, engine: openai}]", "openai.base-url: is required"},
		{"openai bad url", "models: [{name: a, kind: text, slots: 1, engine: openai, openai: {base-url: 'x:80'}}]", "openai.base-url: want an http"},
		{"negative limit", "models: [{name: a, kind: text, slots: 1, engine: sim, limits: {max-tokens: -1}}]", "limits: must not be negative"},
		{"image", "models: [{name: i, kind: image, slots: 1, engine: image, image: {api: a1111, base-url: 'http://127.0.0.1:7860', progress-interval: 1s}}]", ""},
		{"image bad api", "models: [{name: i, kind: image, slots: 1, engine: image, image: {api: comfy, base-url: 'http://x'}}]", "image.api: must be a1111 or openai"},
		{"image for text", "models: [{name: i, kind: text, slots: 1, engine: image, image: {api: a1111, base-url: 'http://x'}}]", "image serves image models"},
		{"process string", "models: [{name: p, kind: text, slots: 4, engine: process, process: {command: 'llama-server -m {model} --port {port}', model: /m.gguf}}]", ""},
		{"process list", "models: [{name: p, kind: text, slots: 4, engine: process, process: {command: [vllm, serve, '{model}'], start-timeout: 20m}}]", ""},
		{"process bad quote", "models: [{name: p, kind: text, slots: 4, engine: process, process: {command: 'a \"b'}}]", "unterminated"},
		{"process without command", "models: [{name: p, kind: text, slots: 4, engine: process, process: {port: 1}}]", "process.command: is required"},
		{"stream interval too long", "models: [{name: a, kind: text, slots: 1, engine: sim, stream-interval: 1m}]", "stream-interval: must be at most 10s"},
		{"llama", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: qwen2.5-0.5b, threads: 8, context: 4096, sequences: 8}}]", ""},
		{"llama path", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: /models/q.gguf}}]", ""},
		{"llama without settings", "models: [{name: q, kind: text, slots: 4, engine: llama}]", "models[0] (q): llama.model: is required"},
		{"llama without model", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {threads: 2}}]", "models[0] (q): llama.model: is required"},
		{"llama unknown key", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: q, gpu-layers: 99}}]", "unknown key gpu-layers"},
		{"llama bad threads", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: q, threads: many}}]", "many"},
		{"llama negative threads", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: q, threads: -1}}]", "llama.threads: must not be negative"},
		{"llama negative context", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: q, context: -1}}]", "llama.context: must not be negative"},
		{"llama negative sequences", "models: [{name: q, kind: text, slots: 4, engine: llama, llama: {model: q, sequences: -2}}]", "llama.sequences: must not be negative"},
		{"llama for images", "models: [{name: q, kind: image, slots: 1, engine: llama, llama: {model: q}}]", "engine: llama serves text models"},
		{"llama settings for sim", "models: [{name: q, kind: text, slots: 1, engine: sim, llama: {model: q}}]", `llama: is set but the engine is "sim"`},
		{"twice", "models: [{name: a, kind: text, slots: 1, engine: sim}, {name: a, kind: text, slots: 1, engine: sim}]", `models[1].name: "a" is listed twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseModels([]byte(tc.yaml))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("parse: %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestModelsSectionPresence: serve tells a missing models section (serve the models directory)
// from an empty one (serve nothing).
func TestModelsSectionPresence(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		nil  bool
	}{
		{"addr: 127.0.0.1:0\n", true},
		{"models: []\n", false},
		{"models:\n", false},
	} {
		models, err := parseModels([]byte(tc.yaml))
		if err != nil || (models == nil) != tc.nil || len(models) != 0 {
			t.Errorf("%q: %#v, %v; want no models, nil %v", tc.yaml, models, err, tc.nil)
		}
	}
}

// TestWorkerUsageErrors: a bad models section stops the command with status 2 and the key.
func TestWorkerUsageErrors(t *testing.T) {
	path := writeConfig(t, "redis-url: redis://127.0.0.1:1/0\nmodels: [{name: a, kind: text, slots: 1, engine: sim, colour: red}]\n")
	code, _, stderr := run(t, env{}, "worker", "--config", path)
	if code != exitUsage || !strings.Contains(stderr, "unknown key colour") {
		t.Errorf("exit %d, stderr %q; want 2 naming the key", code, stderr)
	}
}

// TestServeAndRemoteWorker runs `neovratz serve` with a models section (its built-in worker) and
// a `neovratz worker` that pulls from it over HTTP, and answers a chat request on each.
func TestServeAndRemoteWorker(t *testing.T) {
	dir := t.TempDir()
	serveConfig := filepath.Join(dir, "serve.yaml")
	workerConfig := filepath.Join(dir, "worker.yaml")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(serveConfig, "models: [{name: local-sim, kind: text, slots: 2, engine: sim, sim: {tokens: 5}}]\n")
	write(workerConfig, "models: [{name: remote-sim, kind: text, slots: 2, engine: sim, sim: {tokens: 3}}]\n")
	srv := start(t, env{}, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--auth=false", "--config", serveConfig)
	base := "http://" + srv.addr
	wrk := start(t, env{"NEOVRATZ_TOKEN": "unused-with-auth-off"}, "worker", "--config", workerConfig, "--api", base,
		"--metrics-addr", "127.0.0.1:0", "--drain-timeout", "5s")

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := get(t, base+"/v1/models")
		if strings.Contains(body, "remote-sim") && strings.Contains(body, "local-sim") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/models never listed both models: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for model, tokens := range map[string]int{"local-sim": 5, "remote-sim": 3} {
		body := `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}]}`
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Choices []struct{ Message struct{ Content string } }
			Usage   struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 || out.Choices[0].Message.Content == "" || out.Usage.CompletionTokens != tokens {
			t.Errorf("%s: status %d, %+v, %v; want an answer of %d tokens", model, resp.StatusCode, out, err, tokens)
		}
	}
	// The worker's own endpoints. A worker counts a job once its completion is stored, which
	// the API may have answered from a moment before: the counters get a few seconds.
	metricsShow := func(url, line string) (string, bool) {
		var m string
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, m = get(t, url)
			if strings.Contains(m, line) || time.Now().After(end) {
				return m, strings.Contains(m, line)
			}
		}
	}
	code, _ := get(t, "http://"+wrk.addr+"/healthz")
	metrics, ok := metricsShow("http://"+wrk.addr+"/metrics", `neovratz_worker_jobs_total{model="remote-sim",outcome="succeeded"} 1`)
	if code != 200 || !ok {
		t.Errorf("worker /healthz %d, /metrics lacks the job: %s", code, metrics)
	}
	if _, ok := metricsShow(base+"/metrics", `neovratz_worker_jobs_total{model="local-sim",outcome="succeeded"} 1`); !ok {
		t.Errorf("serve's /metrics lacks its built-in worker's job")
	}
	if code := wrk.stop(t); code != 0 {
		t.Errorf("worker exit %d after SIGTERM, want 0; logs %s", code, wrk.logs)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exit %d, want 0", code)
	}
	if !strings.Contains(wrk.logs.String(), `"msg":"worker stopped"`) {
		t.Errorf("worker did not drain and stop: %s", wrk.logs)
	}
}
