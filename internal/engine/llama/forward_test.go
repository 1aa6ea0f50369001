package llama

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
)

// TestForwardSplitsLargeBatches checks that a batch of more than maxBatch rows, which Forward
// runs in several passes, gives exactly the logits of the same tokens sent pass by pass.
func TestForwardSplitsLargeBatches(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeQ8_0))
	rng := rand.New(rand.NewPCG(3, 4))
	prompt := func(n int) []int32 {
		p := make([]int32, n)
		for i := range p {
			p[i] = int32(rng.IntN(m.Params.Vocab))
		}
		return p
	}
	// Three sequences fill a first pass of exactly maxBatch rows and part of a second one; a
	// fourth of 600 tokens is split inside its prompt, over the second pass and the next ones.
	first := maxBatch/2 + 44
	lens := []int{first, maxBatch - first, 100, 600}
	prompts := make([][]int32, len(lens))
	for i, n := range lens {
		prompts[i] = prompt(n)
	}
	const ctx = 1024

	r := m.NewRunner(2, ctx)
	defer r.Close()
	var steps []Step
	got := make([][]float32, len(prompts))
	for i, p := range prompts {
		got[i] = make([]float32, m.Params.Vocab)
		steps = append(steps, Step{Cache: m.NewKVCache(ctx), Tokens: p, Logits: got[i]})
	}
	if err := r.Forward(steps); err != nil {
		t.Fatal(err)
	}

	// The reference: each pass as its own Forward call of at most maxBatch rows.
	want := make([][]float32, len(prompts))
	ref := make([]Step, len(prompts))
	for i, p := range prompts {
		want[i] = make([]float32, m.Params.Vocab)
		ref[i] = Step{Cache: m.NewKVCache(ctx), Tokens: p, Logits: want[i]}
	}
	r2 := m.NewRunner(2, ctx)
	defer r2.Close()
	fourth := ref[3]
	passes := [][]Step{ref[:2], {ref[2], {Cache: fourth.Cache, Tokens: fourth.Tokens[:maxBatch-100]}}}
	for off := maxBatch - 100; off < len(fourth.Tokens); off += maxBatch {
		end := min(off+maxBatch, len(fourth.Tokens))
		st := Step{Cache: fourth.Cache, Tokens: fourth.Tokens[off:end]}
		if end == len(fourth.Tokens) {
			st.Logits = fourth.Logits
		}
		passes = append(passes, []Step{st})
	}
	for _, pass := range passes {
		if err := r2.Forward(pass); err != nil {
			t.Fatal(err)
		}
	}
	for i := range prompts {
		if steps[i].Cache.Len() != lens[i] {
			t.Errorf("sequence %d: cache holds %d positions, want %d", i, steps[i].Cache.Len(), lens[i])
		}
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("sequence %d (%d tokens): logits differ from the pass-by-pass run", i, lens[i])
		}
	}
}
