package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// TestMatMulF16 checks MatMulF16 against MatMul with the activations
// quantized to F16, bit for bit, on both kernel sets and across the
// three-row groups, the tails and the parallel split.
func TestMatMulF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := NewPool(2)
	defer pool.Close()
	for _, simd := range []bool{true, false} {
		useSIMD(simd)
		for _, tc := range []struct{ rows, cols, nActs int }{
			{1, 32, 1}, {5, 36, 2}, {7, 64, 3}, {33, 320, 17}, {64, 2885, 31}, {300, 1152, 16},
		} {
			w := make([]byte, tc.rows*tc.cols*2)
			for i := 0; i < len(w); i += 2 {
				h := gguf.Float32ToF16(float32(rng.NormFloat64()))
				w[i], w[i+1] = byte(h), byte(h>>8)
			}
			x := make([]float32, tc.nActs*tc.cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 3)
			}
			acts := make([]float32, len(x))
			RoundF16(acts, x)
			a16 := make([]byte, len(x)*2)
			QuantizeActivations(gguf.TypeF16, x, a16)
			for i, v := range acts {
				if got := gguf.Float32ToF16(v); got != uint16(a16[2*i])|uint16(a16[2*i+1])<<8 || gguf.F16ToFloat32(got) != v {
					t.Fatalf("simd=%v RoundF16(%v) = %v, not the quantized half", simd, x[i], v)
				}
			}
			want := make([]float32, tc.rows*tc.nActs)
			MatMul(want, w, gguf.TypeF16, tc.rows, tc.cols, a16, tc.nActs, pool)
			for _, p := range []*Pool{nil, pool} {
				got := make([]float32, len(want))
				MatMulF16(got, w, tc.rows, tc.cols, acts, tc.nActs, p)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("simd=%v %+v: dst[%d] = %v, want %v", simd, tc, i, got[i], want[i])
					}
				}
			}
		}
	}
	useSIMD(true)
}
