package kernels

import (
	"math"
	"testing"
)

// TestSwiGLUVector checks SwiGLU's vector exponential: against float64
// math on values from -120 to 120 (where e^-x over- and underflows float32
// and the clamps take over), and the SIMD version against the pure-Go one,
// over lengths with and without a tail of fewer than 8.
func TestSwiGLUVector(t *testing.T) {
	r := rng(77)
	for _, n := range []int{1, 7, 8, 9, 64, 1000} {
		gate := make([]float32, n)
		up := make([]float32, n)
		for i := range gate {
			gate[i] = r.uniform() * float32(math.Ldexp(1, int(r.next()%8))) // |g| < 128
			up[i] = r.normalish()
		}
		gate[0] = 0
		got := make([]float32, n)
		SwiGLU(got, gate, up)
		var want []float32
		withGeneric(t, func() {
			want = make([]float32, n)
			SwiGLU(want, gate, up)
		})
		for i, g := range gate {
			exact := float64(g) / (1 + math.Exp(-float64(g))) * float64(up[i])
			// Within 4 ulp of the float64 value (one rounding per step of
			// silu and the product, 2 ulp in the exponential), or 1e-30
			// where e^-g past the clamp makes silu underflow differently.
			if d := math.Abs(float64(got[i]) - exact); d > 4*ulp32(exact) && d > 1e-30 {
				t.Errorf("n=%d: swiglu(%v, %v) = %v, float64 %v", n, g, up[i], got[i], exact)
			}
			if d := math.Abs(float64(got[i] - want[i])); d > ulp32(float64(want[i])) {
				t.Errorf("n=%d: swiglu(%v, %v) = %v with SIMD, %v without", n, g, up[i], got[i], want[i])
			}
		}
	}
	nan := float32(math.NaN())
	out := make([]float32, 9)
	SwiGLU(out, []float32{nan, 1, 1, 1, 1, 1, 1, 1, nan}, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1})
	if !math.IsNaN(float64(out[0])) || !math.IsNaN(float64(out[8])) {
		t.Errorf("SwiGLU of NaN = %v, %v; want NaN", out[0], out[8])
	}
}

// ulp32 is the spacing of float32 values at |x|.
func ulp32(x float64) float64 {
	f := float32(math.Abs(x))
	return float64(math.Nextafter32(f, float32(math.Inf(1))) - f)
}
