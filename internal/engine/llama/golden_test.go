package llama

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

var updateHashes = flag.Bool("update", false, "rewrite testdata/golden/fixtures.sha256.json from the fixtures built now (only after regenerating the golden data from them)")

// oracleOutput is what llama-oracle's oracle.mjs prints for a model.
type oracleOutput struct {
	BOS      *int32 `json:"bos"`
	Tokenize []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	} `json:"tokenize"`
	Runs []struct {
		Prompt   string  `json:"prompt"`
		InputIDs []int32 `json:"input_ids"`
		Steps    []struct {
			Token int32        `json:"token"`
			Top   [][2]float64 `json:"top"`
		} `json:"steps"`
	} `json:"runs"`
}

func readGolden(t *testing.T, name string) oracleOutput {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var o oracleOutput
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

// tolerance is how far a probability may be from llama.cpp's for a model of the given weight
// type: 1e-3 for F32 and F16 as the issue sets (the largest differences seen are 2e-4 and
// 9e-4). BF16 rounds every activation to 8 bits of mantissa before each product, as ggml does,
// so a difference in the last bit of a value before rounding (summation order, expf) can
// become a step of 2⁻⁸ ≈ 4e-3 after it: the largest difference seen is 5e-3.
//
// The quantized types quantize every activation row to 8 bits per block (Q8_0, Q8_1, Q8_K)
// before each product, which amplifies the same last-bit differences into whole quantization
// steps; with these peaked random-weight distributions the largest differences seen are 3e-2.
// That is the engine's own sensitivity, not a mismatch: summing the RMS norm's squares in
// float32 instead of float64 — a change of 1e-7 in the norm — moves this engine's
// probabilities by as much (up to 3e-2) against themselves. The bound is 5e-2, and the rank
// and greedy checks below scale with it.
func tolerance(t gguf.Type) float64 {
	switch t {
	case gguf.TypeF32, gguf.TypeF16:
		return 1e-3
	case gguf.TypeBF16:
		return 1e-2
	}
	return 5e-2
}

// TestGolden runs each fixture model on the prompts llama.cpp ran it on (testdata/golden,
// made by llama-oracle) and compares: the tokenization; at every step, the 5 most likely next
// tokens and their probabilities (within tolerance); and the greedy token where llama.cpp's
// top two are clearly apart. Each step feeds llama.cpp's greedy token, so a near-tie that goes
// the other way does not make the rest of the run incomparable.
func TestGolden(t *testing.T) {
	hashes := map[string]string{}
	hashFile := filepath.Join("testdata", "golden", "fixtures.sha256.json")
	if data, err := os.ReadFile(hashFile); err == nil {
		if err := json.Unmarshal(data, &hashes); err != nil {
			t.Fatal(err)
		}
	}
	newHashes := map[string]string{}
	for _, fx := range goldenFixtures() {
		t.Run(fx.name, func(t *testing.T) {
			data, err := llamatest.Build(fx.spec)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			newHashes[fx.name] = hex.EncodeToString(sum[:])
			if want := hashes[fx.name]; want != newHashes[fx.name] && !*updateHashes {
				t.Fatalf("fixture %s has SHA-256 %s, golden data was made from %s: the fixture writer drifted; regenerate testdata/golden (see testdata/README.md)", fx.name, newHashes[fx.name], want)
			}
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, m, readGolden(t, fx.name), tolerance(fx.spec.Type))
		})
	}
	if *updateHashes {
		data, _ := json.MarshalIndent(newHashes, "", "  ")
		if err := os.WriteFile(hashFile, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func compareGolden(t *testing.T, m *Model, o oracleOutput, tol float64) {
	t.Helper()
	if o.BOS != nil && *o.BOS != m.Tokenizer.BOS() {
		t.Errorf("BOS = %d, llama.cpp says %d", m.Tokenizer.BOS(), *o.BOS)
	}
	for _, tk := range o.Tokenize {
		got := m.Tokenizer.Encode(tk.Text, tokenizer.EncodeOptions{})
		if !slices.Equal(got, tk.IDs) {
			t.Errorf("Encode(%q) = %v, llama.cpp: %v", tk.Text, got, tk.IDs)
		}
	}
	r := m.NewRunner(2, 512)
	defer r.Close()
	logits := make([]float32, m.Params.Vocab)
	probs := make([]float64, m.Params.Vocab)
	var worst float64
	for ri, run := range o.Runs {
		c := m.NewKVCache(512)
		input := run.InputIDs
		for si, step := range run.Steps {
			if err := r.Forward([]Step{{Cache: c, Tokens: input, Logits: logits}}); err != nil {
				t.Fatalf("run %d step %d: %v", ri, si, err)
			}
			softmax64(probs, logits)
			order := topK(probs, 5)
			for k := 0; k < 5 && k < len(step.Top); k++ {
				id, want := int32(step.Top[k][0]), step.Top[k][1]
				got := probs[id]
				worst = max(worst, math.Abs(got-want))
				if math.Abs(got-want) > tol {
					t.Errorf("run %d step %d: p(%d) = %.6f, llama.cpp %.6f", ri, si, id, got, want)
				}
				// The rank must agree unless llama.cpp's neighbours are within the tolerance.
				if order[k] != id && math.Abs(probs[order[k]]-want) > tol {
					t.Errorf("run %d step %d: top-%d token %d (p %.6f), llama.cpp's is %d (p %.6f)", ri, si, k+1, order[k], probs[order[k]], id, want)
				}
			}
			if len(step.Top) > 1 && step.Top[0][1]-step.Top[1][1] > 4*tol && order[0] != step.Token {
				t.Errorf("run %d step %d: greedy token %d, llama.cpp %d", ri, si, order[0], step.Token)
			}
			input = []int32{step.Token}
		}
	}
	t.Logf("largest probability difference from llama.cpp: %.2e", worst)
}

// softmax64 writes the probabilities of logits in float64.
func softmax64(dst []float64, logits []float32) {
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, float64(l))
	}
	var sum float64
	for i, l := range logits {
		dst[i] = math.Exp(float64(l) - m)
		sum += dst[i]
	}
	for i := range dst {
		dst[i] /= sum
	}
}

// topK returns the ids of the k largest values, largest first.
func topK(p []float64, k int) []int32 {
	ids := make([]int32, len(p))
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.SliceStable(ids, func(a, b int) bool { return p[ids[a]] > p[ids[b]] })
	return ids[:k]
}
