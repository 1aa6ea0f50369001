package kernels

import (
	"math"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// weightTypes are the weight types the engine loads.
var weightTypes = []gguf.Type{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
	gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
}

// rng is splitmix64: a generator defined here, so that test inputs do not
// change with the standard library's.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform returns a float32 in [-1, 1), computed exactly.
func (r *rng) uniform() float32 {
	return float32(int32(r.next()>>32)) * (1.0 / (1 << 31))
}

// normalish returns a bell-shaped value of variance about 1/3·4/4: the sum of
// four uniforms, scaled. Exact arithmetic only, so it is the same everywhere.
func (r *rng) normalish() float32 {
	return (r.uniform() + r.uniform() + r.uniform() + r.uniform()) * 0.75
}

// randomRows returns rows×n bell-shaped values with a per-row scale.
func randomRows(seed uint64, rows, n int, scale float32) []float32 {
	r := rng(seed)
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = r.normalish() * scale
	}
	return x
}

// goldenInput returns 3 rows of n (a multiple of 256) values that reach the
// corners of the quantizers: row 0 plain bell-shaped values; row 1 blocks of
// 32 at scales from 2^-8 to 2^7, with an all-zero block, a constant block,
// an outlier, an all-negative block and a block whose scaled values fall on
// halves (where rounding modes differ); row 2 small values, an all-positive
// block, and a block below ggml's GROUP_MAX_EPS.
func goldenInput(seed uint64, n int) []float32 {
	r := rng(seed)
	x := make([]float32, 3*n)
	for i := range x {
		x[i] = r.normalish()
	}
	row1 := x[n : 2*n]
	for b := 0; b < n/32; b++ {
		blk := row1[32*b : 32*b+32]
		scale := float32(math.Ldexp(1, b%16-8))
		for j := range blk {
			blk[j] *= scale
		}
		switch b % 16 {
		case 3:
			clear(blk)
		case 5:
			for j := range blk {
				blk[j] = 0.25
			}
		case 7:
			blk[11] = 100
		case 9:
			for j := range blk {
				blk[j] = -abs32(blk[j]) - 0.001
			}
		case 11:
			for j := range blk {
				blk[j] = float32(j-16) + 0.5
			}
			blk[0] = 127
		}
	}
	row2 := x[2*n : 3*n]
	for i := range row2 {
		row2[i] *= 1.0 / 1024
	}
	for j := range 32 {
		row2[64+j] = abs32(row2[64+j]) + 0.01
		row2[256+j] *= 1e-17
	}
	return x
}

// quantized returns x quantized to t.
func quantized(t gguf.Type, x []float32) []byte {
	b := make([]byte, RowBytes(t, len(x)))
	Quantize(t, x, b)
	return b
}

// activations returns x quantized as the activations for weights of type t.
func activations(t gguf.Type, x []float32) []byte {
	b := make([]byte, RowBytes(ActivationType(t), len(x)))
	QuantizeActivations(t, x, b)
	return b
}

// withGeneric runs f with the pure-Go kernels selected.
func withGeneric(t *testing.T, f func()) {
	t.Helper()
	useSIMD(false)
	defer useSIMD(true)
	f()
}

// dotTolerance bounds how far two float summation orders of the dot
// product of w and a (n elements of weight type t) may drift apart: a few
// float32 roundings of the sum of the magnitudes of the products.
func dotTolerance(t gguf.Type, n int, w, a []byte) float32 {
	wf := make([]float32, n)
	af := make([]float32, n)
	Dequantize(t, w, wf)
	Dequantize(ActivationType(t), a, af)
	var s float64
	for i := range wf {
		s += math.Abs(float64(wf[i]) * float64(af[i]))
	}
	return float32(s*2e-6) + 1e-30
}
