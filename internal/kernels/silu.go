package kernels

import "math"

// The SwiGLU's exponential. math.Exp (float64) was a sixth of a long
// prompt's time; ggml's SIMD builds use a vector expf of their own too
// (ggml_v_expf), so llama.cpp's results are no closer to an exact exp than
// to this one. expApprox and its AVX2 version (silu_amd64.s) do the same
// operations, each FMA rounded once:
//
//   - clamp x to [-87, 88], where e^x and its reciprocal stay normal floats;
//   - n = round(x·log2 e), r = x - n·ln2 (ln2 in a high part exact to 12
//     bits and a low part, Cody and Waite's split), |r| ≤ ln2/2;
//   - e^r by its Taylor polynomial of degree 7 (truncation error below
//     2^-27 on that interval), in Horner's form;
//   - times 2^n, built in the exponent bits.
//
// The result is within 2 ulp of e^x; a NaN in x gives a NaN SiLU through
// the numerator x.
const (
	expLo    = -87
	expHi    = 88
	log2E    = 1.44269504088896341
	ln2Hi    = 0.693359375
	ln2Lo    = -2.12194440e-4
	expC7    = 1.0 / 5040
	expC6    = 1.0 / 720
	expC5    = 1.0 / 120
	expC4    = 1.0 / 24
	expC3    = 1.0 / 6
	expC2    = 0.5
	expC1    = 1
	expC0    = 1
	expBias  = 127
	mantBits = 23
)

// fma32 is a float32 fused multiply-add. The float64 product of two float32
// is exact; the sum is rounded to float64 and then to float32, which differs
// from one rounding only where the float64 sum falls exactly between two
// float32 values: rare enough that the tests compare within an ulp.
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

func expApprox(x float32) float32 {
	x = min(max(x, expLo), expHi)
	n := float32(math.RoundToEven(float64(x * log2E)))
	r := fma32(-n, ln2Hi, x)
	r = fma32(-n, ln2Lo, r)
	p := fma32(expC7, r, expC6)
	p = fma32(p, r, expC5)
	p = fma32(p, r, expC4)
	p = fma32(p, r, expC3)
	p = fma32(p, r, expC2)
	p = fma32(p, r, expC1)
	p = fma32(p, r, expC0)
	return p * math.Float32frombits(uint32(int32(n)+expBias)<<mantBits)
}

// swigluGeneric is SwiGLU with expApprox, one element at a time.
func swigluGeneric(dst, gate, up []float32) {
	dst = dst[:len(gate)]
	up = up[:len(gate)]
	for i, g := range gate {
		dst[i] = g / (1 + expApprox(-g)) * up[i]
	}
}
