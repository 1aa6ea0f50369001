package kernels

import (
	"fmt"
	"math"
)

// The float kernels of a transformer layer, following the scalar code of
// ggml-cpu's ops.cpp and vec.h: sums of squares and of exponentials in
// float64 (ggml_float), everything else in float32 with one rounding per
// operation.

// Dot returns the dot product of x and y (len(x) elements; y must be at
// least as long). The SIMD version sums in float32 lanes; the scalar one
// sums float32 products in float64, as ggml_vec_dot_f32 without SIMD.
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	return floatOps.dot(x, y)
}

// Axpy adds a·x to y: y[i] += a·x[i] for i < len(x).
func Axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	floatOps.axpy(a, x, y)
}

// Scale multiplies x by a in place.
func Scale(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

// floatOps holds the float kernels that have SIMD versions.
var floatOps = struct {
	dot    func(x, y []float32) float32
	axpy   func(a float32, x, y []float32)
	swiglu func(dst, gate, up []float32)
	vecMat func(out, a, m []float32, stride int)
}{dotGeneric, axpyGeneric, swigluGeneric, vecMatGeneric}

func dotGeneric(x, y []float32) float32 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += float64(v * y[i])
	}
	return float32(s)
}

func axpyGeneric(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += float32(a * v)
	}
}

// RMSNorm writes x normalized by its root mean square, times the weights w,
// to dst: dst[i] = x[i]·(1/√(mean(x²)+eps))·w[i]. w may be nil (no weights).
// dst may be x. This is ggml's rms_norm followed by its mul, in that order.
func RMSNorm(dst, x, w []float32, eps float32) {
	dst = dst[:len(x)]
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * scale
		}
		return
	}
	w = w[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*scale) * w[i]
	}
}

// Softmax replaces x by its softmax: exp(x[i]-max) / Σ exp(x[j]-max), the
// sum taken in float64 and applied as one multiplication by its inverse, as
// ggml's soft_max. Entries of -Inf (masked) become 0.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	Scale(x, float32(1/sum))
}

// silu is ggml_silu_f32: x/(1+e^-x) in float32.
func silu(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// SiLU writes silu(x[i]) = x[i]/(1+e^-x[i]) to dst (which may be x).
func SiLU(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = silu(v)
	}
}

// SwiGLU writes silu(gate[i])·up[i] to dst (which may be gate or up), the
// gated feed-forward activation of Llama and Qwen, with the vector
// exponential of silu.go (within 2 ulp of e^x) rather than math.Exp, as
// ggml's SIMD builds compute it with theirs.
func SwiGLU(dst, gate, up []float32) {
	floatOps.swiglu(dst, gate, up)
}

// RoPE holds rotary position embedding parameters as llama.cpp passes them
// to ggml_rope_ext. The zero values of FreqScale and AttnFactor mean 1;
// ExtFactor 0 turns YaRN off (llama.cpp's default for non-YaRN models).
type RoPE struct {
	Dims        int       // rotated dimensions per head (n_rot): even, at most the head size
	Base        float32   // frequency base (rope.freq_base), e.g. 10000 or 1e6
	NeoX        bool      // rotate pairs (i, i+Dims/2) as GPT-NeoX and Qwen do, not (2i, 2i+1) as Llama does
	FreqScale   float32   // 1/linear scaling factor (rope.scaling.factor); 0 means 1
	FreqFactors []float32 // optional divisor of each pair's frequency (Llama 3's rope_freqs), Dims/2 of them
	ExtFactor   float32   // YaRN extrapolation mix; 0 disables YaRN
	AttnFactor  float32   // magnitude scale of cos and sin; 0 means 1
	BetaFast    float32   // YaRN low correction dim (llama.cpp default 32)
	BetaSlow    float32   // YaRN high correction dim (default 1)
	OrigCtx     int       // YaRN original training context (rope.scaling.original_context_length)
}

// Table writes the rotation for position pos to cs[0:r.Dims]: cos and sin of
// each pair's angle, interleaved, as ggml_rope_cache_init computes them (the
// angle multiplied by the frequency ratio pair by pair, in float32).
func (r *RoPE) Table(cs []float32, pos int) {
	if r.Dims <= 0 || r.Dims%2 != 0 {
		panic(fmt.Sprintf("kernels: RoPE dims %d must be even and positive", r.Dims))
	}
	cs = cs[:r.Dims]
	freqScale := r.FreqScale
	if freqScale == 0 {
		freqScale = 1
	}
	mscale := r.AttnFactor
	if mscale == 0 {
		mscale = 1
	}
	var corr [2]float32
	if r.ExtFactor != 0 {
		corr = yarnCorrDims(r.Dims, r.OrigCtx, r.Base, r.BetaFast, r.BetaSlow)
		mscale *= 1 + float32(0.1*float32(math.Log(float64(1/freqScale))))
	}
	thetaScale := float32(math.Pow(float64(r.Base), float64(-2/float32(r.Dims))))
	theta := float32(pos)
	for i0 := 0; i0 < r.Dims; i0 += 2 {
		extrap := theta
		if r.FreqFactors != nil {
			extrap = theta / r.FreqFactors[i0/2]
		}
		t := freqScale * extrap
		if r.ExtFactor != 0 {
			mix := yarnRamp(corr[0], corr[1], i0) * r.ExtFactor
			t = float32(t*(1-mix)) + float32(extrap*mix)
		}
		cs[i0] = float32(math.Cos(float64(t))) * mscale
		cs[i0+1] = float32(math.Sin(float64(t))) * mscale
		theta *= thetaScale
	}
}

// yarnRamp is rope_yarn_ramp.
func yarnRamp(low, high float32, i0 int) float32 {
	y := (float32(i0/2) - low) / max(0.001, high-low)
	return 1 - min(1, max(0, y))
}

// yarnCorrDims is ggml_rope_yarn_corr_dims: the dimensions between which
// YaRN blends interpolation into extrapolation.
func yarnCorrDims(dims, origCtx int, base, betaFast, betaSlow float32) [2]float32 {
	corrDim := func(nRot float32) float32 {
		return float32(dims) * float32(math.Log(float64(float32(origCtx)/(nRot*2*math.Pi)))) / (2 * float32(math.Log(float64(base))))
	}
	start := float32(math.Floor(float64(corrDim(betaFast))))
	end := float32(math.Ceil(float64(corrDim(betaSlow))))
	return [2]float32{max(0, start), min(float32(dims-1), end)}
}

// Apply rotates each head of x (len(x)/headDim heads of headDim values) by
// the table cs from Table. Dimensions from r.Dims on are left as they are.
func (r *RoPE) Apply(x []float32, headDim int, cs []float32) {
	if r.Dims > headDim || headDim <= 0 || len(x)%headDim != 0 {
		panic(fmt.Sprintf("kernels: RoPE of %d dims on %d values in heads of %d", r.Dims, len(x), headDim))
	}
	cs = cs[:r.Dims]
	half := r.Dims / 2
	for h := 0; h+headDim <= len(x); h += headDim {
		v := x[h : h+r.Dims]
		for i := 0; i < half; i++ {
			c, s := cs[2*i], cs[2*i+1]
			j, k := 2*i, 2*i+1
			if r.NeoX {
				j, k = i, i+half
			}
			x0, x1 := v[j], v[k]
			v[j] = float32(x0*c) - float32(x1*s)
			v[k] = float32(x0*s) + float32(x1*c)
		}
	}
}
