package llama

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// TestRoundF16 checks the fast rounding against the conversion through a half on values of
// every magnitude, ties included.
func TestRoundF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(x float32) {
		want := gguf.F16ToFloat32(gguf.Float32ToF16(x))
		got := roundF16(x)
		if math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("roundF16(%g [%#x]) = %g, want %g", x, math.Float32bits(x), got, want)
		}
	}
	for range 1_000_000 {
		check(math.Float32frombits(r.Uint32()))
		check(float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-20))))
	}
	for h := range 1 << 16 {
		x := gguf.F16ToFloat32(uint16(h))
		check(x)
		// The point halfway to the next half up, and just around it.
		b := math.Float32bits(x)
		for _, d := range []uint32{0x1000, 0xfff, 0x1001} {
			check(math.Float32frombits(b + d))
		}
	}
	check(65519.99)
	check(65520)
	check(float32(math.Inf(1)))
}
