package sim_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

var (
	_ worker.TextEngine      = (*sim.Engine)(nil)
	_ worker.ImageEngine     = (*sim.Engine)(nil)
	_ worker.EmbeddingEngine = (*sim.Engine)(nil)
	_ worker.HealthChecker   = (*sim.Engine)(nil)
)

func chat(content string) inference.TextRequest {
	return inference.TextRequest{Model: "m", N: 1, Messages: []openai.Message{{Role: "user", Content: openai.Content(content)}}}
}

func generate(t *testing.T, e *sim.Engine, req inference.TextRequest) (inference.TextResult, []inference.TextDelta) {
	t.Helper()
	var deltas []inference.TextDelta
	res, err := e.GenerateText(context.Background(), req, func(d inference.TextDelta) error {
		deltas = append(deltas, d)
		return nil
	})
	if err != nil {
		t.Fatalf("GenerateText: %v", err)
	}
	return res, deltas
}

func TestText(t *testing.T) {
	e := sim.New(sim.Config{Tokens: 8})
	maxTok := func(n int) inference.TextRequest { r := chat("hello"); r.MaxTokens = n; return r }
	stopReq := chat("hello")
	tests := []struct {
		name       string
		req        inference.TextRequest
		wantTokens int
		wantFinish string
	}{
		{"default length", chat("hello"), 8, openai.FinishStop},
		{"max tokens caps", maxTok(3), 3, openai.FinishLength},
		{"max tokens above length", maxTok(100), 8, openai.FinishStop},
		{"completion", inference.TextRequest{Model: "m", N: 1, Prompt: "once upon"}, 8, openai.FinishStop},
		{"n choices", func() inference.TextRequest { r := chat("x"); r.N = 3; return r }(), 24, openai.FinishStop},
		{"stop sequence", stopReq, -1, openai.FinishStop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantTokens == -1 {
				// Stop at the second word of what the request generates unhindered.
				full, _ := generate(t, e, tc.req)
				words := strings.Fields(full.Choices[0].Text)
				tc.req.Sampling.Stop = openai.Stop{" " + words[1]}
				res, _ := generate(t, e, tc.req)
				if got := res.Choices[0].Text; got != words[0] {
					t.Errorf("text with stop %q = %q, want %q", words[1], got, words[0])
				}
				return
			}
			res, deltas := generate(t, e, tc.req)
			if res.Usage.CompletionTokens != tc.wantTokens {
				t.Errorf("completion tokens = %d, want %d", res.Usage.CompletionTokens, tc.wantTokens)
			}
			if res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens || res.Usage.PromptTokens == 0 {
				t.Errorf("usage = %+v", res.Usage)
			}
			joined := make([]string, len(res.Choices))
			for _, d := range deltas {
				joined[d.Index] += d.Text
			}
			for i, c := range res.Choices {
				if c.FinishReason != tc.wantFinish {
					t.Errorf("choice %d finish = %q, want %q", i, c.FinishReason, tc.wantFinish)
				}
				if joined[i] != c.Text {
					t.Errorf("choice %d: deltas join to %q, result text %q", i, joined[i], c.Text)
				}
			}
			again, _ := generate(t, e, tc.req)
			if again.Choices[0].Text != res.Choices[0].Text {
				t.Errorf("not deterministic: %q then %q", res.Choices[0].Text, again.Choices[0].Text)
			}
		})
	}
	a, _ := generate(t, e, chat("one prompt"))
	b, _ := generate(t, e, chat("another prompt"))
	if a.Choices[0].Text == b.Choices[0].Text {
		t.Errorf("different prompts gave the same text %q", a.Choices[0].Text)
	}
}

func TestTextLogprobs(t *testing.T) {
	req := chat("hi")
	req.Logprobs, req.TopLogprobs = true, 2
	res, deltas := generate(t, sim.New(sim.Config{Tokens: 4}), req)
	if got := len(res.Choices[0].Logprobs); got != 4 {
		t.Fatalf("logprobs = %d, want 4", got)
	}
	for _, d := range deltas {
		if len(d.Logprobs) != 1 || len(d.Logprobs[0].TopLogprobs) != 2 || d.Logprobs[0].Logprob > 0 {
			t.Errorf("delta logprobs = %+v", d.Logprobs)
		}
	}
}

func TestTextTiming(t *testing.T) {
	e := sim.New(sim.Config{Tokens: 5, TimeToFirstToken: 30 * time.Millisecond, InterTokenLatency: 10 * time.Millisecond})
	start := time.Now()
	var first time.Duration
	_, err := e.GenerateText(context.Background(), chat("x"), func(d inference.TextDelta) error {
		if first == 0 {
			first = time.Since(start)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Lower bounds only: a loaded machine may be slower, never faster.
	if first < 30*time.Millisecond {
		t.Errorf("first token after %v, want at least 30ms", first)
	}
	if total := time.Since(start); total < 70*time.Millisecond {
		t.Errorf("5 tokens took %v, want at least 70ms", total)
	}
}

func TestTextCancel(t *testing.T) {
	e := sim.New(sim.Config{Tokens: 1000, InterTokenLatency: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := e.GenerateText(ctx, chat("x"), func(d inference.TextDelta) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("after cancel: err = %v after %d deltas, want context.Canceled after 3", err, n)
	}
	stop := errors.New("stop")
	_, err = e.GenerateText(context.Background(), chat("x"), func(d inference.TextDelta) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit error: got %v, want it returned", err)
	}
}

func TestEmbed(t *testing.T) {
	e := sim.New(sim.Config{EmbeddingDim: 64})
	res, err := e.Embed(context.Background(), inference.EmbeddingRequest{Model: "m", Input: []string{"a b", "c", "a b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Embeddings) != 3 || res.Usage.PromptTokens != 5 {
		t.Fatalf("got %d embeddings, usage %+v; want 3 and 5 prompt tokens", len(res.Embeddings), res.Usage)
	}
	var norm, dot float64
	for j, x := range res.Embeddings[0] {
		norm += float64(x) * float64(x)
		dot += float64(x) * float64(res.Embeddings[1][j])
		if x != res.Embeddings[2][j] {
			t.Fatalf("equal inputs got different embeddings at %d", j)
		}
	}
	if len(res.Embeddings[0]) != 64 || math.Abs(norm-1) > 1e-5 || math.Abs(dot) > 0.9 {
		t.Errorf("dim %d, norm %v, dot with another input %v", len(res.Embeddings[0]), norm, dot)
	}
}

func TestImage(t *testing.T) {
	e := sim.New(sim.Config{ImageSteps: 3})
	var prog []inference.ImageProgress
	res, err := e.GenerateImage(context.Background(), inference.ImageRequest{Model: "m", Prompt: "a cat", N: 2, Width: 96, Height: 64, Seed: -1},
		func(p inference.ImageProgress) error { prog = append(prog, p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 6 || prog[5] != (inference.ImageProgress{Index: 1, Step: 3, Steps: 3}) {
		t.Errorf("progress = %+v, want 3 steps for each of 2 images", prog)
	}
	if len(res.Images) != 2 {
		t.Fatalf("images = %d, want 2", len(res.Images))
	}
	for i, im := range res.Images {
		cfg, err := png.DecodeConfig(bytes.NewReader(im.PNG))
		if err != nil || cfg.Width != 96 || cfg.Height != 64 {
			t.Errorf("image %d: %dx%d, %v; want a 96x64 PNG", i, cfg.Width, cfg.Height, err)
		}
		if im.Seed < 0 {
			t.Errorf("image %d: seed %d, want the picked seed", i, im.Seed)
		}
	}
}
