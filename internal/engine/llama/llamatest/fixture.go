// Package llamatest writes small GGUF models with seeded random weights and a synthetic
// vocabulary, for the llama engine's tests and benchmarks: each architecture the engine runs
// (llama with a SentencePiece vocabulary, qwen2 and qwen3 with a byte-level BPE one) in each
// weight type. The files are deterministic byte for byte, so golden data that llama.cpp
// computed for them once stays valid; the tests check a SHA-256 of each to notice a drift.
package llamatest

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
)

// Spec describes a fixture model.
type Spec struct {
	Arch    string    // llama, qwen2 or qwen3
	Type    gguf.Type // type of the 2-D weights (embeddings and projections)
	Embd    int
	Layers  int
	FF      int
	Heads   int
	KVHeads int
	// HeadDim sets attention.key_length/value_length when it differs from Embd/Heads (0: same).
	HeadDim int
	// Vocab is the number of tokens; the synthetic vocabulary is padded up to it.
	Vocab    int
	Context  int
	RopeBase float32
	// Tied leaves out output.weight so the output reuses token_embd.
	Tied bool
	Seed uint64
	// ChatTemplate, when set, is stored as tokenizer.chat_template.
	ChatTemplate string
	// Types overrides Type for tensors whose name ends with the key ("attn_v.weight",
	// "ffn_down.weight", "token_embd.weight", "output.weight"), to build mixes like Q4_K_M.
	Types map[string]gguf.Type
}

// Small returns the spec of a small model of arch in weight type t: a few layers, grouped-query
// attention, and for qwen3 a head size that differs from Embd/Heads as in the real models.
func Small(arch string, t gguf.Type) Spec {
	s := Spec{Arch: arch, Type: t, Embd: 64, Layers: 2, FF: 160, Heads: 4, KVHeads: 2, Vocab: 384,
		Context: 2048, RopeBase: 10000, Seed: 1}
	switch arch {
	case "qwen2":
		s.RopeBase = 1000000
		s.Tied = true
		s.Seed = 2
	case "qwen3":
		s.HeadDim = 32
		s.RopeBase = 1000000
		s.Seed = 3
	}
	return s
}

// Quant returns the spec of a small model of arch whose weights are quantized to t (or, with
// mix, a Q4_K_M-like mix: t for most matrices, Q6_K for attn_v, ffn_down and the output as
// llama-quantize's Q4_K_M chooses for the layers that matter most). Its widths are multiples
// of 256, the block size of the k-quants.
func Quant(arch string, t gguf.Type, mix bool) Spec {
	s := Spec{Arch: arch, Type: t, Embd: 256, Layers: 2, FF: 512, Heads: 4, KVHeads: 2, Vocab: 384,
		Context: 2048, RopeBase: 10000, Seed: 11}
	switch arch {
	case "qwen2":
		s.RopeBase = 1000000
		s.Tied = true
		s.Seed = 12
	case "qwen3":
		s.Heads, s.HeadDim = 8, 64
		s.RopeBase = 1000000
		s.Seed = 13
	}
	if mix {
		s.Types = map[string]gguf.Type{"attn_v.weight": gguf.TypeQ6_K, "ffn_down.weight": gguf.TypeQ6_K, "output.weight": gguf.TypeQ6_K}
	}
	return s
}

// Qwen05B returns the spec of a model shaped like Qwen2.5-0.5B (hidden 896, 24 layers,
// 14 heads, 2 KV heads, FFN 4864, vocabulary 151936, tied embeddings) with random weights of
// type t, for benchmarks. With mix it is Q4_K_M-like as llama-quantize makes it for this shape,
// where rows of 896 are not whole k-quant blocks and fall back: Q5_0 for most matrices
// (Q4_K's fallback), Q8_0 for attn_v and the embeddings (Q6_K's fallback), Q4_K for ffn_down.
func Qwen05B(t gguf.Type, mix bool) Spec {
	s := Spec{Arch: "qwen2", Type: t, Embd: 896, Layers: 24, FF: 4864, Heads: 14, KVHeads: 2, Vocab: 151936,
		Context: 32768, RopeBase: 1000000, Tied: true, Seed: 42}
	if mix {
		s.Type = gguf.TypeQ5_0
		s.Types = map[string]gguf.Type{"attn_v.weight": gguf.TypeQ8_0, "token_embd.weight": gguf.TypeQ8_0, "ffn_down.weight": gguf.TypeQ4_K}
	}
	return s
}

// Build returns the bytes of the GGUF file s describes.
func Build(s Spec) ([]byte, error) {
	b, err := builder(s)
	if err != nil {
		return nil, err
	}
	return b.Bytes()
}

// Write writes the GGUF file s describes to path.
func Write(path string, s Spec) error {
	b, err := builder(s)
	if err != nil {
		return err
	}
	return b.WriteFile(path)
}

func builder(s Spec) (*gguf.Builder, error) {
	if s.Embd <= 0 || s.Layers <= 0 || s.FF <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.Heads%s.KVHeads != 0 {
		return nil, errors.New("llamatest: bad dimensions")
	}
	hd := s.HeadDim
	if hd == 0 {
		hd = s.Embd / s.Heads
	}
	b := gguf.NewBuilder()
	var errs []error
	set := func(k string, v gguf.Value) { errs = append(errs, b.Set(k, v)) }
	a := s.Arch
	set("general.architecture", gguf.ValueOf(a))
	set("general.name", gguf.ValueOf("neovratz fixture "+a+" "+s.Type.String()))
	set(a+".context_length", gguf.ValueOf(uint32(s.Context)))
	set(a+".embedding_length", gguf.ValueOf(uint32(s.Embd)))
	set(a+".block_count", gguf.ValueOf(uint32(s.Layers)))
	set(a+".feed_forward_length", gguf.ValueOf(uint32(s.FF)))
	set(a+".attention.head_count", gguf.ValueOf(uint32(s.Heads)))
	set(a+".attention.head_count_kv", gguf.ValueOf(uint32(s.KVHeads)))
	if s.HeadDim != 0 {
		set(a+".attention.key_length", gguf.ValueOf(uint32(hd)))
		set(a+".attention.value_length", gguf.ValueOf(uint32(hd)))
	}
	set(a+".rope.freq_base", gguf.ValueOf(s.RopeBase))
	set(a+".attention.layer_norm_rms_epsilon", gguf.ValueOf(float32(1e-6)))
	if a == "llama" {
		set(a+".rope.dimension_count", gguf.ValueOf(uint32(hd)))
	}
	set("general.file_type", gguf.ValueOf(uint32(fileType(s.Type))))
	voc := vocabulary(a, s.Vocab)
	voc.set(set)
	if s.ChatTemplate != "" {
		set("tokenizer.chat_template", gguf.ValueOf(s.ChatTemplate))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	r := newRand(s.Seed)
	add := func(name string, t gguf.Type, dims []uint64, xs []float32) {
		data, err := encode(t, xs)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		errs = append(errs, b.AddTensor(name, t, dims, data))
	}
	typeOf := func(name string) gguf.Type {
		for suffix, t := range s.Types {
			if len(name) >= len(suffix) && name[len(name)-len(suffix):] == suffix {
				return t
			}
		}
		return s.Type
	}
	// A matrix of rows × cols with entries uniform in ±scale/√cols, so that each output has
	// about scale² variance for inputs of unit variance.
	matrix := func(name string, cols, rows int, scale float64) {
		add(name, typeOf(name), []uint64{uint64(cols), uint64(rows)}, r.uniform(cols*rows, scale*math.Sqrt(3/float64(cols))))
	}
	// Norm weights near 1, biases near 0: F32 as the converters write them.
	norm := func(name string, n int) { add(name, gguf.TypeF32, []uint64{uint64(n)}, r.around(n, 1, 0.2)) }
	bias := func(name string, n int) { add(name, gguf.TypeF32, []uint64{uint64(n)}, r.around(n, 0, 0.2)) }

	V := len(voc.tokens)
	// Output weights that give logits of about 2.5 standard deviations make next-token
	// distributions peaked enough for clear greedy choices, yet not so peaked that every
	// probability but the first rounds to nothing.
	const outScale = 2.5
	embdScale := 1.0
	if s.Tied {
		embdScale = outScale * math.Sqrt(3/float64(s.Embd))
	}
	add("token_embd.weight", typeOf("token_embd.weight"), []uint64{uint64(s.Embd), uint64(V)}, r.uniform(s.Embd*V, embdScale))
	norm("output_norm.weight", s.Embd)
	if !s.Tied {
		matrix("output.weight", s.Embd, V, outScale)
	}
	for i := range s.Layers {
		n := func(x string) string { return fmt.Sprintf("blk.%d.%s", i, x) }
		norm(n("attn_norm.weight"), s.Embd)
		matrix(n("attn_q.weight"), s.Embd, s.Heads*hd, 1)
		matrix(n("attn_k.weight"), s.Embd, s.KVHeads*hd, 1)
		matrix(n("attn_v.weight"), s.Embd, s.KVHeads*hd, 1)
		if a == "qwen2" {
			bias(n("attn_q.bias"), s.Heads*hd)
			bias(n("attn_k.bias"), s.KVHeads*hd)
			bias(n("attn_v.bias"), s.KVHeads*hd)
		}
		if a == "qwen3" {
			norm(n("attn_q_norm.weight"), hd)
			norm(n("attn_k_norm.weight"), hd)
		}
		matrix(n("attn_output.weight"), s.Heads*hd, s.Embd, 1)
		norm(n("ffn_norm.weight"), s.Embd)
		matrix(n("ffn_gate.weight"), s.Embd, s.FF, 1)
		matrix(n("ffn_up.weight"), s.Embd, s.FF, 1)
		matrix(n("ffn_down.weight"), s.FF, s.Embd, 1)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// encode converts xs to type t with ggml's reference quantizer for t (what llama-quantize
// writes without an importance matrix).
func encode(t gguf.Type, xs []float32) ([]byte, error) {
	if !kernels.Supported(t) {
		return nil, fmt.Errorf("no quantizer for %s", t)
	}
	if uint64(len(xs))%t.BlockSize() != 0 {
		return nil, fmt.Errorf("%d values are not whole %s blocks", len(xs), t)
	}
	dst := make([]byte, kernels.RowBytes(t, len(xs)))
	kernels.Quantize(t, xs, dst)
	return dst, nil
}

// fileType is general.file_type (llama_ftype) for a model mostly of type t.
func fileType(t gguf.Type) int {
	switch t {
	case gguf.TypeF32:
		return 0
	case gguf.TypeF16:
		return 1
	case gguf.TypeQ4_0:
		return 2
	case gguf.TypeQ4_1:
		return 3
	case gguf.TypeQ8_0:
		return 7
	case gguf.TypeQ5_0:
		return 8
	case gguf.TypeQ5_1:
		return 9
	case gguf.TypeQ4_K:
		return 15 // Q4_K_M
	case gguf.TypeQ5_K:
		return 17 // Q5_K_M
	case gguf.TypeQ6_K:
		return 18
	case gguf.TypeBF16:
		return 32
	}
	return 0
}

// rng is a PCG-XSH-RR generator written out here rather than taken from math/rand, whose
// streams the fixtures must not depend on: a change there would change every fixture file.
type rng struct{ state uint64 }

func newRand(seed uint64) *rng {
	r := &rng{state: seed*0x9E3779B97F4A7C15 + 0x853C49E6748FEA9B}
	r.next()
	return r
}

func (r *rng) next() uint32 {
	old := r.state
	r.state = old*6364136223846793005 + 1442695040888963407
	x := uint32(((old >> 18) ^ old) >> 27)
	rot := uint32(old >> 59)
	return x>>rot | x<<((-rot)&31)
}

// float returns a float uniform in [-1, 1).
func (r *rng) float() float64 { return float64(r.next())/(1<<31) - 1 }

func (r *rng) uniform(n int, scale float64) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(r.float() * scale)
	}
	return xs
}

func (r *rng) around(n int, center, spread float64) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(center + r.float()*spread)
	}
	return xs
}

// WriteTemp writes the fixture to a new file in dir and returns its path.
func WriteTemp(dir string, s Spec) (string, error) {
	f, err := os.CreateTemp(dir, s.Arch+"-"+s.Type.String()+"-*.gguf")
	if err != nil {
		return "", err
	}
	path := f.Name()
	f.Close()
	return path, Write(path, s)
}
