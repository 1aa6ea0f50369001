package llama

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

var _ worker.TextEngine = (*Engine)(nil)

// TestChatThroughWorker sends a streamed chat completion to a real neovratz — HTTP API,
// embedded broker, worker — whose model runs on this engine with a fixture model, and checks
// the stream: chunks of text, then usage, then [DONE].
func TestChatThroughWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole neovratz")
	}
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeF16))
	eng := newEngine(t, m, Config{})

	b, err := sqlitebroker.Open(ctx, filepath.Join(t.TempDir(), "broker.db"), broker.Config{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	api, err := httpapi.New(httpapi.Config{Broker: b, Logger: logger, Registry: prometheus.NewRegistry(), AuthDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	models := []worker.Model{{Name: "fixture", Kind: worker.KindText, Engine: "llama", Slots: 4, Limits: worker.Limits{MaxContext: 2048}}}
	w, err := worker.New(worker.Config{ID: "llama-e2e", Hostname: "test", Version: "test", Models: models, DrainTimeout: 2 * time.Second},
		b, map[string]worker.Engine{"fixture": eng}, logger, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx) }()
	defer func() {
		stop()
		<-werr
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if ws, err := b.Workers(ctx); err == nil && len(ws) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker did not register")
		}
		time.Sleep(10 * time.Millisecond)
	}

	body := `{"model":"fixture","messages":[{"role":"user","content":"hello world"}],"max_tokens":12,
		"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	var text strings.Builder
	var usage struct{ PromptTokens, CompletionTokens, TotalTokens int }
	chunks, done := 0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
				TotalTokens      int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				chunks++
				text.WriteString(c.Delta.Content)
			}
		}
		if chunk.Usage != nil {
			usage.PromptTokens, usage.CompletionTokens, usage.TotalTokens = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens, chunk.Usage.TotalTokens
		}
	}
	if !done || chunks == 0 {
		t.Fatalf("stream ended (done %v) after %d text chunks: %q", done, chunks, text.String())
	}
	direct, _ := collect(t, eng, inference.TextRequest{Messages: []openai.Message{{Role: "user", Content: "hello world"}},
		MaxTokens: 12, N: 1, Sampling: openai.Sampling{Temperature: ptr(0.0)}})
	if want := direct.Choices[0].Text; text.String() != want {
		t.Errorf("streamed %q, want the engine's greedy text %q", text.String(), want)
	}
	if usage.CompletionTokens == 0 || usage.PromptTokens == 0 || usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens {
		t.Errorf("usage %+v", usage)
	}
}
