package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// TestHalfVectors checks DotF16, MadF16 and ScaleF16 against their definitions: the SIMD
// lanes (32 halves at a time) fuse the multiply-add as ggml's AVX2 code does, the tail and
// the pure-Go kernels round the product first as its scalar code does.
func TestHalfVectors(t *testing.T) {
	for _, simd := range []bool{false, true} {
		on := useSIMD(simd)
		for _, n := range []int{1, 8, 32, 64, 80, 128} {
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			half := func() uint16 { return gguf.Float32ToF16(float32(rng.NormFloat64())) }
			x, y := make([]uint16, n), make([]uint16, n)
			for i := range x {
				x[i], y[i] = half(), half()
			}
			v := float32(rng.NormFloat64())
			f := gguf.F16ToFloat32
			simdPart := 0
			if on {
				simdPart = n &^ 31
			}

			var dot float64
			for i := range x {
				dot += float64(f(x[i])) * float64(f(y[i]))
			}
			if got := DotF16(x, y); !close32(float64(got), dot, 1e-5) {
				t.Errorf("simd %v n %d: DotF16 = %v, want %v", on, n, got, dot)
			}

			mad := append([]uint16(nil), y...)
			MadF16(mad, x, v)
			for i := range x {
				want := gguf.Float32ToF16(f(y[i]) + float32(f(x[i])*v))
				if i < simdPart {
					want = gguf.Float32ToF16(float32(math.FMA(float64(f(x[i])), float64(v), float64(f(y[i])))))
				}
				if mad[i] != want {
					t.Fatalf("simd %v n %d: MadF16 [%d] = %#04x, want %#04x", on, n, i, mad[i], want)
				}
			}

			sc := append([]uint16(nil), y...)
			ScaleF16(sc, v)
			for i := range y {
				if want := gguf.Float32ToF16(f(y[i]) * v); sc[i] != want {
					t.Fatalf("simd %v n %d: ScaleF16 [%d] = %#04x, want %#04x", on, n, i, sc[i], want)
				}
			}
		}
	}
	useSIMD(true)
}
