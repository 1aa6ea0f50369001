package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// testWorker is the real worker (internal/worker) on the sim engine, serving the API's tests:
//
//	text   chat and completion, 4 tokens a choice, context length 4096
//	slow   text at 20 ms a token, for as long as the job lives (cancellation, timeouts)
//	medium text of 10 tokens at 30 ms a token (a stream that outlives a shutdown's start)
//	fail   text that refuses max_tokens above 1 as a bad request (the worker's limit)
//	embed  embeddings of 4 dimensions
//	image  images of the requested size
type testWorker struct {
	id  string
	reg *prometheus.Registry
}

// textSim is the text model's engine configuration; expectedText computes its answers.
var textSim = sim.Config{Tokens: 4}

func startTestWorker(t *testing.T, b broker.Broker) *testWorker {
	t.Helper()
	models := []worker.Model{
		{Name: "text", Kind: worker.KindText, Engine: "sim", Slots: 8, Limits: worker.Limits{MaxContext: 4096}},
		{Name: "slow", Kind: worker.KindText, Engine: "sim", Slots: 4, Limits: worker.Limits{MaxContext: 4096}},
		{Name: "medium", Kind: worker.KindText, Engine: "sim", Slots: 2},
		{Name: "fail", Kind: worker.KindText, Engine: "sim", Slots: 2, Limits: worker.Limits{MaxTokens: 1}},
		{Name: "embed", Kind: worker.KindEmbedding, Engine: "sim", Slots: 2},
		{Name: "image", Kind: worker.KindImage, Engine: "sim", Slots: 2},
	}
	engines := map[string]worker.Engine{
		"text":   sim.New(textSim),
		"slow":   sim.New(sim.Config{Tokens: 1 << 20, InterTokenLatency: 20 * time.Millisecond}),
		"medium": sim.New(sim.Config{Tokens: 10, InterTokenLatency: 30 * time.Millisecond}),
		"fail":   sim.New(textSim),
		"embed":  sim.New(sim.Config{EmbeddingDim: 4}),
		"image":  sim.New(sim.Config{}),
	}
	tw := &testWorker{id: "testworker-" + job.NewID()[4:14], reg: prometheus.NewRegistry()}
	w, err := worker.New(worker.Config{ID: tw.id, Hostname: "test", MetricsAddr: "127.0.0.1:9999", Models: models,
		DrainTimeout: time.Second}, b, engines, nil, tw.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	waitFor(t, "the worker to register", func() bool {
		ws, _ := b.Workers(context.Background())
		return len(ws) > 0
	})
	return tw
}

// count returns the worker's neovratz_worker_jobs_total for model and outcome.
func (w *testWorker) count(model, outcome string) float64 {
	mfs, _ := w.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "neovratz_worker_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == model && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// expectedText is what the text model answers req, computed on the engine directly.
func expectedText(t *testing.T, req inference.TextRequest) inference.TextResult {
	t.Helper()
	res, err := sim.New(textSim).GenerateText(context.Background(), req, func(inference.TextDelta) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// expectedChat is the text model's answer to one user message.
func expectedChat(t *testing.T, content string, maxTokens, n int) inference.TextResult {
	t.Helper()
	req := openai.ChatCompletionRequest{Model: "text", Messages: []openai.Message{{Role: "user", Content: openai.Content(content)}}}
	if maxTokens > 0 {
		req.MaxTokens = &maxTokens
	}
	if n > 0 {
		req.N = &n
	}
	tr, err := inference.FromChat(&req)
	if err != nil {
		t.Fatal(err)
	}
	return expectedText(t, tr)
}
