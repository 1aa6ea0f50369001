package llama

import (
	"errors"
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/gguf"
)

// ErrUnsupported matches errors about a model this engine cannot run: an unknown architecture,
// a tensor type without a kernel, a feature such as a fused QKV tensor.
var ErrUnsupported = errors.New("unsupported model")

// ErrInvalidModel matches errors about a model file that contradicts itself: a missing tensor
// or key, a tensor of the wrong shape, an impossible hyperparameter.
var ErrInvalidModel = errors.New("invalid model")

// ropeMode is how RoPE pairs the dimensions of a head.
type ropeMode int

const (
	// ropeNorm rotates adjacent pairs (x[2i], x[2i+1]): llama.cpp's LLAMA_ROPE_TYPE_NORM, used
	// for the llama architecture because convert_hf_to_gguf.py permutes Q and K into that order.
	ropeNorm ropeMode = iota
	// ropeNeox rotates the halves (x[i], x[i+n/2]): LLAMA_ROPE_TYPE_NEOX, qwen2 and qwen3.
	ropeNeox
)

// Params are a model's hyperparameters, read from the <arch>.* keys of its GGUF file.
type Params struct {
	Arch       string // llama, qwen2 or qwen3
	Embd       int    // hidden size (embedding_length)
	Layers     int    // block_count
	FF         int    // feed_forward_length
	Heads      int    // attention.head_count
	KVHeads    int    // attention.head_count_kv (grouped-query attention when fewer than Heads)
	HeadDimK   int    // attention.key_length, default Embd/Heads
	HeadDimV   int    // attention.value_length, default Embd/Heads
	Rot        int    // rope.dimension_count: the leading dimensions of a head that RoPE rotates
	Vocab      int    // rows of token_embd
	ContextLen int    // context_length the model was trained with
	NormEps    float32

	RopeBase      float32 // rope.freq_base
	RopeFreqScale float32 // 1 / rope.scaling.factor (linear and YaRN scaling)
	RopeScaling   string  // none, linear or yarn
	// YaRN settings (used when RopeScaling is yarn): the context the model was trained with
	// before scaling, and the extrapolation mix factor llama.cpp derives (1 for YaRN).
	RopeOrigCtx   int
	RopeExtFactor float32
	RopeAttnScale float32 // rope.scaling.attn_factor, 1 when absent

	ropeMode ropeMode
}

// Limits on hyperparameters, far above any real model of the supported families; they keep a
// hostile file from asking for absurd allocations before any tensor is checked.
const (
	maxEmbd   = 1 << 16
	maxLayers = 1 << 10
	maxHeads  = 1 << 10
	maxFF     = 1 << 20
	maxCtx    = 1 << 24
)

func readParams(f *gguf.File) (Params, error) {
	arch, ok := f.String("general.architecture")
	if !ok {
		return Params{}, fmt.Errorf("%w: no general.architecture", ErrInvalidModel)
	}
	p := Params{Arch: arch}
	switch arch {
	case "llama":
		p.ropeMode = ropeNorm
	case "qwen2", "qwen3":
		p.ropeMode = ropeNeox
	default:
		return Params{}, fmt.Errorf("%w: architecture %q (supported: llama, qwen2, qwen3)", ErrUnsupported, arch)
	}
	key := func(k string) string { return arch + "." + k }
	var errs []error
	req := func(k string, dst *int, lo, hi int) {
		v, ok := f.Uint(key(k))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s is missing or not a non-negative integer", key(k)))
		case v < uint64(lo) || v > uint64(hi):
			errs = append(errs, fmt.Errorf("%s = %d is outside [%d, %d]", key(k), v, lo, hi))
		default:
			*dst = int(v)
		}
	}
	opt := func(k string, dst *int, def, lo, hi int) {
		if _, present := f.Value(key(k)); !present {
			*dst = def
			return
		}
		req(k, dst, lo, hi)
	}
	req("embedding_length", &p.Embd, 1, maxEmbd)
	req("block_count", &p.Layers, 1, maxLayers)
	req("feed_forward_length", &p.FF, 1, maxFF)
	req("attention.head_count", &p.Heads, 1, maxHeads)
	if len(errs) > 0 {
		return Params{}, fmt.Errorf("%w: %w", ErrInvalidModel, errors.Join(errs...))
	}
	opt("attention.head_count_kv", &p.KVHeads, p.Heads, 1, p.Heads)
	opt("attention.key_length", &p.HeadDimK, p.Embd/p.Heads, 1, maxEmbd)
	opt("attention.value_length", &p.HeadDimV, p.Embd/p.Heads, 1, maxEmbd)
	opt("context_length", &p.ContextLen, 2048, 1, maxCtx)
	if len(errs) > 0 {
		return Params{}, fmt.Errorf("%w: %w", ErrInvalidModel, errors.Join(errs...))
	}
	opt("rope.dimension_count", &p.Rot, p.HeadDimK, 2, p.HeadDimK)
	if p.Heads%p.KVHeads != 0 {
		errs = append(errs, fmt.Errorf("head_count %d is not a multiple of head_count_kv %d", p.Heads, p.KVHeads))
	}
	if p.Rot%2 != 0 {
		errs = append(errs, fmt.Errorf("rope.dimension_count %d is odd", p.Rot))
	}
	if arch == "llama" && p.Rot != p.HeadDimK {
		// llama.cpp refuses the same: the llama graph rotates whole heads.
		errs = append(errs, fmt.Errorf("rope.dimension_count %d differs from the head size %d", p.Rot, p.HeadDimK))
	}
	if p.HeadDimK != p.HeadDimV {
		errs = append(errs, fmt.Errorf("%w: key_length %d differs from value_length %d", ErrUnsupported, p.HeadDimK, p.HeadDimV))
	}

	eps, ok := f.Float(key("attention.layer_norm_rms_epsilon"))
	if !ok {
		errs = append(errs, fmt.Errorf("%s is missing", key("attention.layer_norm_rms_epsilon")))
	} else if !(eps > 0 && eps < 1) {
		errs = append(errs, fmt.Errorf("%s = %g is not in (0, 1)", key("attention.layer_norm_rms_epsilon"), eps))
	}
	p.NormEps = float32(eps)

	p.RopeBase = 10000
	if v, ok := f.Float(key("rope.freq_base")); ok {
		if !(v > 1 && v < 1e12) {
			errs = append(errs, fmt.Errorf("%s = %g is out of range", key("rope.freq_base"), v))
		}
		p.RopeBase = float32(v)
	}
	p.RopeScaling = "linear" // llama.cpp's default when the key is absent (with factor 1: none)
	if v, ok := f.String(key("rope.scaling.type")); ok {
		p.RopeScaling = v
	}
	switch p.RopeScaling {
	case "none", "linear", "yarn":
	default:
		errs = append(errs, fmt.Errorf("%w: rope scaling %q (supported: none, linear, yarn)", ErrUnsupported, p.RopeScaling))
	}
	factor, ok := f.Float(key("rope.scaling.factor"))
	if !ok {
		factor, _ = f.Float(key("rope.scale_linear")) // the older key
	}
	p.RopeFreqScale = 1
	if factor != 0 {
		if !(factor > 0 && factor < 1e6) || math.IsNaN(factor) {
			errs = append(errs, fmt.Errorf("rope scaling factor %g is out of range", factor))
		} else {
			p.RopeFreqScale = float32(1 / factor)
		}
	}
	if p.RopeScaling == "none" {
		p.RopeFreqScale = 1
	}
	p.RopeOrigCtx = p.ContextLen
	if _, present := f.Value(key("rope.scaling.original_context_length")); present {
		opt("rope.scaling.original_context_length", &p.RopeOrigCtx, p.ContextLen, 1, maxCtx)
	}
	if p.RopeScaling == "yarn" {
		p.RopeExtFactor = 1
	}
	p.RopeAttnScale = 1
	if v, ok := f.Float(key("rope.scaling.attn_factor")); ok && v > 0 && v < 100 {
		p.RopeAttnScale = float32(v)
	}
	if len(errs) > 0 {
		return Params{}, fmt.Errorf("%w: %w", ErrInvalidModel, errors.Join(errs...))
	}
	return p, nil
}

// qDim, kvDim are the widths of the Q and of the K (or V) projections.
func (p Params) qDim() int  { return p.Heads * p.HeadDimK }
func (p Params) kvDim() int { return p.KVHeads * p.HeadDimK }
