package llama

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

// loadFixture builds a fixture model in memory.
func loadFixture(t testing.TB, s llamatest.Spec) *Model {
	t.Helper()
	data, err := llamatest.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newEngine(t testing.TB, m *Model, cfg Config) *Engine {
	t.Helper()
	if cfg.Threads == 0 {
		cfg.Threads = 2
	}
	e, err := NewEngine(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func ptr[T any](v T) *T { return &v }

// greedyRef generates n tokens greedily with a Runner alone, the reference the engine's
// batched, chunked scheduling must reproduce.
func greedyRef(t *testing.T, m *Model, prompt []int32, n int) []int32 {
	t.Helper()
	r := m.NewRunner(1, 512)
	defer r.Close()
	c := m.NewKVCache(512)
	logits := make([]float32, m.Params.Vocab)
	var out []int32
	in := prompt
	for range n {
		if err := r.Forward([]Step{{Cache: c, Tokens: in, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		best := int32(0)
		for i, l := range logits {
			if l > logits[best] {
				best = int32(i)
			}
		}
		out = append(out, best)
		if m.Tokenizer.IsEOG(best) {
			break
		}
		in = []int32{best}
	}
	return out
}

func collect(t *testing.T, e *Engine, req inference.TextRequest) (inference.TextResult, []inference.TextDelta) {
	t.Helper()
	var deltas []inference.TextDelta
	var mu sync.Mutex
	res, err := e.GenerateText(context.Background(), req, func(d inference.TextDelta) error {
		mu.Lock()
		defer mu.Unlock()
		deltas = append(deltas, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, deltas
}

// TestEngineMatchesRunner checks that requests running concurrently — prompts read in chunks
// beside other sequences' decode steps — give exactly what one sequence alone gives.
func TestEngineMatchesRunner(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen3", gguf.TypeF32))
	prompts := []string{
		"The quick brown fox",
		"hello world, once upon a time",
		strings.Repeat("the lazy dog sat on the mat and ", 12),
		"what is the number of people",
	}
	const n = 12
	// Small batches force prompts to be read in several chunks alongside decoding.
	e := newEngine(t, m, Config{BatchTokens: 24, Sequences: 3})
	want := make([]string, len(prompts))
	for i, p := range prompts {
		ids := m.Encode(p, true)
		want[i] = sanitize(m.Tokenizer.Decode(greedyRef(t, m, ids, n)))
	}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := collect(t, e, inference.TextRequest{Prompt: p, MaxTokens: n, N: 1, Sampling: openai.Sampling{Temperature: ptr(0.0)}})
			got[i] = res.Choices[0].Text
		}()
	}
	wg.Wait()
	for i := range prompts {
		if sanitize(got[i]) != want[i] {
			t.Errorf("prompt %d: engine %q, runner alone %q", i, got[i], want[i])
		}
	}
}

// sanitize replaces invalid UTF-8 as the engine does, and merges runs of U+FFFD, which the
// engine makes per piece and ToValidUTF8 per run.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for strings.Contains(s, "\uFFFD\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD\uFFFD", "\uFFFD")
	}
	return s
}

func TestEngineChatStreamsAndCounts(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeF16))
	e := newEngine(t, m, Config{})
	req := inference.TextRequest{Messages: []openai.Message{{Role: "user", Content: "hello world"}}, MaxTokens: 10, N: 2,
		Logprobs: true, TopLogprobs: 3, Sampling: openai.Sampling{Seed: ptr(int64(5)), Temperature: ptr(1.0)}}
	res, deltas := collect(t, e, req)
	prompt, _ := e.Prompt(req)
	if want := "<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n"; m.Tokenizer.Detokenize(prompt, tokenizer.DecodeOptions{UnparseSpecial: true}) != want {
		t.Errorf("chat prompt = %q, want %q", m.Tokenizer.Detokenize(prompt, tokenizer.DecodeOptions{UnparseSpecial: true}), want)
	}
	if res.Usage.PromptTokens != len(prompt) || res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Errorf("usage %+v, prompt %d tokens", res.Usage, len(prompt))
	}
	streamed := make([]string, 2)
	for _, d := range deltas {
		if !utf8.ValidString(d.Text) {
			t.Errorf("delta %q is not valid UTF-8", d.Text)
		}
		streamed[d.Index] += d.Text
		for _, lp := range d.Logprobs {
			if lp.Logprob > 0 || len(lp.TopLogprobs) != 3 {
				t.Errorf("logprob %+v", lp)
			}
		}
	}
	tokens := 0
	for i, c := range res.Choices {
		if c.Text != streamed[i] {
			t.Errorf("choice %d: result %q, streamed %q", i, c.Text, streamed[i])
		}
		if c.FinishReason != openai.FinishLength && c.FinishReason != openai.FinishStop {
			t.Errorf("choice %d: finish %q", i, c.FinishReason)
		}
		if len(c.Logprobs) == 0 || len(c.Logprobs) > 10 {
			t.Errorf("choice %d: %d logprobs", i, len(c.Logprobs))
		}
		tokens += len(c.Logprobs)
	}
	if res.Usage.CompletionTokens != tokens {
		t.Errorf("completion tokens %d, logprobs for %d", res.Usage.CompletionTokens, tokens)
	}
	// The same seed gives the same text.
	again, _ := collect(t, e, req)
	for i := range res.Choices {
		if again.Choices[i].Text != res.Choices[i].Text {
			t.Errorf("choice %d: seeded runs differ: %q, %q", i, res.Choices[i].Text, again.Choices[i].Text)
		}
	}
}

func TestEngineStopString(t *testing.T) {
	m := loadFixture(t, llamatest.Small("llama", gguf.TypeF32))
	e := newEngine(t, m, Config{})
	base := inference.TextRequest{Prompt: "The quick brown fox", MaxTokens: 16, N: 1, Sampling: openai.Sampling{Temperature: ptr(0.0)}}
	full, _ := collect(t, e, base)
	text := full.Choices[0].Text
	if len(text) < 6 {
		t.Skipf("greedy text %q too short for a stop string", text)
	}
	// A stop string from the middle of the text, likely spanning tokens.
	stop := text[len(text)/2 : len(text)/2+3]
	cut := text[:strings.Index(text, stop)]
	req := base
	req.Sampling.Stop = []string{stop}
	res, deltas := collect(t, e, req)
	if res.Choices[0].Text != cut || res.Choices[0].FinishReason != openai.FinishStop {
		t.Errorf("with stop %q: text %q (%s), want %q (stop)", stop, res.Choices[0].Text, res.Choices[0].FinishReason, cut)
	}
	var streamed string
	for _, d := range deltas {
		streamed += d.Text
	}
	if streamed != cut {
		t.Errorf("streamed %q, want %q: text of the stop string was sent", streamed, cut)
	}
	if full.Choices[0].FinishReason != openai.FinishLength || full.Usage.CompletionTokens != 16 {
		t.Errorf("without stop: finish %q after %d tokens, want length after 16", full.Choices[0].FinishReason, full.Usage.CompletionTokens)
	}
}

func TestEngineRefusesLongPrompt(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeF32))
	e := newEngine(t, m, Config{Context: 32})
	_, err := e.GenerateText(context.Background(), inference.TextRequest{Prompt: strings.Repeat("the dog ", 40), N: 1}, func(inference.TextDelta) error { return nil })
	if !errors.Is(err, inference.ErrBadRequest) || !strings.Contains(err.Error(), "context") {
		t.Fatalf("err = %v, want a bad request about the context", err)
	}
	// A prompt that fits generates until the context is full.
	res, _ := collect(t, e, inference.TextRequest{Prompt: "the dog", N: 1, Sampling: openai.Sampling{Temperature: ptr(0.0)}})
	prompt := m.Encode("the dog", true)
	if got := res.Usage.CompletionTokens; res.Choices[0].FinishReason == openai.FinishLength && got != 32-len(prompt) {
		t.Errorf("generated %d tokens in a context of 32 after a prompt of %d", got, len(prompt))
	}
}

func TestEngineCancel(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeF32))
	e := newEngine(t, m, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	start := time.Now()
	_, err := e.GenerateText(ctx, inference.TextRequest{Prompt: "hello", N: 1, Sampling: openai.Sampling{Temperature: ptr(1.0), Seed: ptr(int64(1))}}, func(d inference.TextDelta) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
	// An emit error stops the request too, and the engine serves the next one.
	boom := fmt.Errorf("client gone")
	_, err = e.GenerateText(context.Background(), inference.TextRequest{Prompt: "hello", N: 1}, func(inference.TextDelta) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the emit error", err)
	}
	if res, _ := collect(t, e, inference.TextRequest{Prompt: "hello", MaxTokens: 3, N: 1}); res.Usage.CompletionTokens == 0 {
		t.Errorf("engine did not serve after cancellations")
	}
}
