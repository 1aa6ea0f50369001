package main

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neovratz/neovratz/internal/engine/llama"
	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/inference"
	nvopenai "github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// writeModelsDir fills a models directory: a fixture model the native engine loads (its name
// is returned), a truncated GGUF file it cannot load, and an image checkpoint.
func writeModelsDir(t *testing.T, dir string) (fixture string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := llamatest.Write(filepath.Join(dir, "tiny-qwen2.gguf"), llamatest.Small("qwen2", gguf.TypeF16)); err != nil {
		t.Fatal(err)
	}
	// GGUF magic and version 3, then nothing: the header ends early.
	if err := os.WriteFile(filepath.Join(dir, "broken.gguf"), []byte("GGUF\x03\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	header := []byte(`{"__metadata__":{"modelspec.title":"tiny sd"}}`)
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	if err := os.WriteFile(filepath.Join(dir, "sd-tiny.safetensors"), append(st, header...), 0o600); err != nil {
		t.Fatal(err)
	}
	return "tiny-qwen2"
}

// TestServeModelsDir runs `neovratz serve` with no models section on a models directory, and
// chats with its fixture model through the official OpenAI Go client: the streamed tokens and
// the usage are what the native engine produces for the same greedy request when asked
// directly. The files the engine cannot load are skipped with a log line each, not fatal.
func TestServeModelsDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole neovratz on a model")
	}
	dir := t.TempDir()
	modelsDir := filepath.Join(dir, "models")
	fixture := writeModelsDir(t, modelsDir)
	srv := start(t, env{}, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--models-dir", modelsDir, "--auth=false")
	base := "http://" + srv.addr

	logs := srv.logs.String()
	for _, want := range []string{
		`"msg":"model loaded","model":"tiny-qwen2","engine":"llama"`,
		`"msg":"skipping a model the native engine cannot load","model":"broken"`,
		`"msg":"skipping a model the native engine cannot load","model":"sd-tiny"`,
		"no SD UNet",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, `"model":"broken"`); n != 1 {
		t.Errorf("the unloadable file is in %d log lines, want 1", n)
	}

	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("unused-with-auth-off"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The worker registers its models just after serve listens.
	var ids []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if len(ids) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Join(ids, ",") != fixture {
		t.Fatalf("/v1/models lists %v, want only %s", ids, fixture)
	}

	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:               fixture,
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello world")},
		MaxCompletionTokens: openai.Int(12),
		Temperature:         openai.Float(0),
		StreamOptions:       openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var deltas []string
	var usage openai.CompletionUsage
	finish := ""
	for stream.Next() {
		ch := stream.Current()
		for _, choice := range ch.Choices {
			if choice.Delta.Content != "" {
				deltas = append(deltas, choice.Delta.Content)
			}
			if choice.FinishReason != "" {
				finish = choice.FinishReason
			}
		}
		if ch.Usage.TotalTokens > 0 {
			usage = ch.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}

	want := directGreedy(t, filepath.Join(modelsDir, fixture+".gguf"), "hello world", 12)
	if len(deltas) == 0 || strings.Join(deltas, "") != want.Choices[0].Text {
		t.Errorf("streamed %q, want the engine's greedy text %q", deltas, want.Choices[0].Text)
	}
	if finish != want.Choices[0].FinishReason {
		t.Errorf("finish reason %q, want %q", finish, want.Choices[0].FinishReason)
	}
	if usage.PromptTokens != int64(want.Usage.PromptTokens) || usage.CompletionTokens != int64(want.Usage.CompletionTokens) ||
		usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens {
		t.Errorf("usage %+v, want %+v", usage, want.Usage)
	}

	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`neovratz_worker_engine_load_seconds{model="tiny-qwen2"}`,
		`neovratz_worker_engine_load_failures_total{model="broken"} 1`,
		`neovratz_worker_engine_load_failures_total{model="tiny-qwen2"} 0`,
		`neovratz_worker_jobs_total{model="tiny-qwen2",outcome="succeeded"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("serve's /metrics lacks %s", want)
		}
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exit %d, want 0; stderr %s", code, srv.stderr)
	}
}

// directGreedy is the native engine's answer to a one-message chat at temperature 0, asked
// directly, configured as serve configures it.
func directGreedy(t *testing.T, path, prompt string, maxTokens int) inference.TextResult {
	t.Helper()
	m, err := llama.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	eng, err := llama.NewEngine(m, llama.Config{Threads: runtime.NumCPU(), Sequences: defaultSlots})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	temp := 0.0
	res, err := eng.GenerateText(context.Background(), inference.TextRequest{N: 1, MaxTokens: maxTokens,
		Messages: []nvopenai.Message{{Role: "user", Content: nvopenai.Content(prompt)}}, Sampling: nvopenai.Sampling{Temperature: &temp}},
		func(inference.TextDelta) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestServeEmptySection: "models: []" in serve's config runs no worker, even with models in the
// directory.
func TestServeEmptySection(t *testing.T) {
	dir := t.TempDir()
	modelsDir := filepath.Join(dir, "models")
	writeModelsDir(t, modelsDir)
	srv := start(t, env{}, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--models-dir", modelsDir,
		"--auth=false", "--config", writeConfig(t, "models: []\n"))
	if logs := srv.logs.String(); strings.Contains(logs, "model loaded") || !strings.Contains(logs, "runs no worker") {
		t.Errorf("logs: %s; want no model loaded and no worker", logs)
	}
}

// TestLlamaEngineConfig builds `engine: llama` models from a models section: by name in the
// models directory and by path, with the errors that name the key when the file is missing or
// cannot be loaded.
func TestLlamaEngineConfig(t *testing.T) {
	modelsDir := filepath.Join(t.TempDir(), "models")
	writeModelsDir(t, modelsDir)
	home := t.TempDir()
	if err := os.Symlink(filepath.Join(modelsDir, "tiny-qwen2.gguf"), filepath.Join(home, "linked.gguf")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		want       string // "" = loads
		context    int    // the limit the worker gets
	}{
		{"by name", "{name: a, kind: text, slots: 2, engine: llama, llama: {model: tiny-qwen2, threads: 1, context: 64}}", "", 64},
		{"by name with extension", "{name: a, kind: text, slots: 2, engine: llama, llama: {model: TINY-QWEN2.gguf}}", "", 2048},
		{"by path", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: " + filepath.Join(modelsDir, "tiny-qwen2.gguf") + "}}", "", 2048},
		{"home path", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: ~/linked.gguf}, limits: {max-context: 100}}", "", 100},
		{"unknown name", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: tiny-qwen}}", `model a: llama.model: model "tiny-qwen" not found in ` + modelsDir + " (did you mean tiny-qwen2?)", 0},
		{"missing path", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: /nonexistent/m.gguf}}", "model a: llama.model: stat /nonexistent/m.gguf", 0},
		{"image checkpoint", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: sd-tiny}}", "llama.model: not a model the native engine loads: sd-tiny: unsupported model", 0},
		{"unloadable", "{name: a, kind: text, slots: 1, engine: llama, llama: {model: broken}}", "model a: gguf", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			models, err := parseModels([]byte("models: [" + tc.yaml + "]"))
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			set, err := buildEngines(models, engineEnv{modelsDir: modelsDir, home: func() (string, error) { return home, nil },
				logger: slog.New(slog.DiscardHandler), reg: reg})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("build: %v, want an error containing %q", err, tc.want)
				}
				if got := loadFailures(t, reg, "a"); got != 1 {
					t.Errorf("load failures %v, want 1", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			defer set.Close()
			_, text := set.engines["a"].(worker.TextEngine)
			_, closer := set.engines["a"].(io.Closer)
			if !text || !closer {
				t.Errorf("engine %T is not a closable text engine", set.engines["a"])
			}
			if got := set.models[0].Limits.MaxContext; got != tc.context {
				t.Errorf("max context %d, want %d", got, tc.context)
			}
			if n := testutil.CollectAndCount(reg, "neovratz_worker_engine_load_seconds"); n != 1 {
				t.Errorf("%d load time series, want 1", n)
			}
			if got := loadFailures(t, reg, "a"); got != 0 {
				t.Errorf("load failures %v, want 0", got)
			}
		})
	}
}

// loadFailures reads model's neovratz_worker_engine_load_failures_total back from reg.
func loadFailures(t *testing.T, reg *prometheus.Registry, model string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "neovratz_worker_engine_load_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == model {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestWorkerLlamaModelMissing: a worker whose llama model is not there stops at start, naming
// the model and the key.
func TestWorkerLlamaModelMissing(t *testing.T) {
	path := writeConfig(t, "redis-url: redis://127.0.0.1:1/0\nmodels: [{name: a, kind: text, slots: 1, engine: llama, llama: {model: nope}}]\n")
	code, _, stderr := run(t, env{}, "worker", "--config", path, "--models-dir", t.TempDir())
	if code != exitError || !strings.Contains(stderr, `model a: llama.model: model "nope" not found`) {
		t.Errorf("exit %d, stderr %q; want 1 naming the model and the key", code, stderr)
	}
}
