package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// testWorker serves jobs from a real broker with deterministic output. The worker package
// (internal/worker with the sim engine) is being built in parallel with this one; until it is
// usable here, this small loop stands in for it so these tests exercise the API against real
// brokers with real event logs. It speaks the same contract: reserve, append deltas, extend
// the lease (noticing cancellation), complete or fail.
//
// Models: "text" (chat and completion), "slow" (text that emits one delta, then waits until the
// job is canceled), "fail" (fails non-retryably as a bad request), "embed" and "image".
type testWorker struct {
	b      broker.Broker
	id     string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	canceled map[string]bool // jobs whose cancellation the worker noticed
}

var testModels = []broker.ModelInfo{
	{Name: "text", Kind: "text", ContextLength: 4096},
	{Name: "slow", Kind: "text", ContextLength: 4096},
	{Name: "fail", Kind: "text"},
	{Name: "embed", Kind: "embedding"},
	{Name: "image", Kind: "image"},
}

// testReply is what the text models answer, token by token.
var testReply = []string{"Hello", ",", " world", "!"}

func startTestWorker(t *testing.T, b broker.Broker) *testWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &testWorker{b: b, id: "testworker-" + job.NewID()[4:14], cancel: cancel, canceled: map[string]bool{}}
	info := broker.WorkerInfo{ID: w.id, Hostname: "test", Slots: 8, Engine: "test", StartedAt: time.Now(), ModelInfo: testModels,
		MetricsAddr: "127.0.0.1:9999"}
	for _, m := range testModels {
		info.Models = append(info.Models, m.Name)
	}
	if err := b.RegisterWorker(ctx, info); err != nil {
		t.Fatalf("register test worker: %v", err)
	}
	w.wg.Add(1)
	go w.loop(ctx, info.Models)
	t.Cleanup(func() {
		cancel()
		w.wg.Wait()
		_ = b.DeregisterWorker(context.Background(), w.id)
	})
	return w
}

func (w *testWorker) sawCanceled(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.canceled[id]
}

func (w *testWorker) loop(ctx context.Context, models []string) {
	defer w.wg.Done()
	for {
		leases, err := w.b.Reserve(ctx, w.id, models, 8)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, l := range leases {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.run(ctx, l)
			}()
		}
	}
}

func (w *testWorker) run(ctx context.Context, l *broker.Lease) {
	j := l.Job
	switch j.Model {
	case "text", "slow":
		w.text(ctx, l)
	case "fail":
		_ = w.b.Fail(ctx, l, job.Error{Code: "bad_request", Message: "the test model refuses this prompt"})
	case "embed":
		var req openai.EmbeddingRequest
		_ = json.Unmarshal(j.Input, &req)
		res := inference.EmbeddingResult{Usage: openai.Usage{PromptTokens: len(req.Input), TotalTokens: len(req.Input)}}
		for i, in := range req.Input {
			res.Embeddings = append(res.Embeddings, []float32{float32(len(in)), float32(i), 0.5, -1})
		}
		w.complete(ctx, l, res)
	case "image":
		var req openai.ImageRequest
		_ = json.Unmarshal(j.Input, &req)
		ir, _ := inference.FromImage(&req)
		var res inference.ImageResult
		for i := range ir.N {
			_, _ = w.b.AppendEvent(ctx, l, broker.Event{Type: broker.EventProgress, Data: mustJSON(inference.ImageProgress{Index: i, Step: 1, Steps: 1})})
			res.Images = append(res.Images, inference.GeneratedImage{PNG: testPNG(i), Seed: int64(i)})
		}
		w.complete(ctx, l, res)
	}
}

func (w *testWorker) text(ctx context.Context, l *broker.Lease) {
	j := l.Job
	var tr inference.TextRequest
	var err error
	if j.Kind == job.KindChat {
		var req openai.ChatCompletionRequest
		_ = json.Unmarshal(j.Input, &req)
		tr, err = inference.FromChat(&req)
	} else {
		var req openai.CompletionRequest
		_ = json.Unmarshal(j.Input, &req)
		tr, err = inference.FromCompletion(&req)
	}
	if err != nil {
		_ = w.b.Fail(ctx, l, job.Error{Code: "bad_request", Message: err.Error()})
		return
	}
	tokens, finish := testReply, openai.FinishStop
	if tr.MaxTokens > 0 && tr.MaxTokens < len(tokens) {
		tokens, finish = tokens[:tr.MaxTokens], openai.FinishLength
	}
	if j.Model == "slow" {
		tokens = tokens[:1]
	}
	res := inference.TextResult{Usage: openai.Usage{PromptTokens: 3, CompletionTokens: len(tokens), TotalTokens: 3 + len(tokens)}}
	for i := range tr.N {
		for _, tok := range tokens {
			if _, err := w.b.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: mustJSON(inference.TextDelta{Index: i, Text: tok})}); err != nil {
				w.noteCanceled(j.ID, err)
				return
			}
		}
		res.Choices = append(res.Choices, inference.TextChoice{Index: i, Text: strings.Join(tokens, ""), FinishReason: finish})
	}
	if j.Model == "slow" {
		// Run until canceled, as a long generation would, watching the lease as a worker does.
		for ctx.Err() == nil {
			if err := w.b.ExtendLease(ctx, l); err != nil {
				w.noteCanceled(j.ID, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		return
	}
	w.complete(ctx, l, res)
}

func (w *testWorker) noteCanceled(id string, err error) {
	if errors.Is(err, broker.ErrCanceled) {
		w.mu.Lock()
		w.canceled[id] = true
		w.mu.Unlock()
	}
}

func (w *testWorker) complete(ctx context.Context, l *broker.Lease, v any) {
	if err := w.b.Complete(ctx, l, mustJSON(v)); err != nil {
		w.noteCanceled(l.Job.ID, err)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}

// testPNG is a small deterministic image: 8x8 in a shade that depends on i.
func testPNG(i int) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for p := range img.Pix {
		img.Pix[p] = uint8(30 * (i + 1))
	}
	img.Set(0, 0, color.White)
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
