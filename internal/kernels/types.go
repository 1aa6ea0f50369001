package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/gguf"
)

// Block geometry of the formats this package handles (ggml-common.h).
const (
	qk  = 32  // elements in a Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 block
	qkK = 256 // elements in a k-quant super-block (QK_K)

	q4_0Bytes = 2 + qk/2         // d, 16 bytes of nibbles
	q4_1Bytes = 2 + 2 + qk/2     // d, m, nibbles
	q5_0Bytes = 2 + 4 + qk/2     // d, 32 high bits, nibbles
	q5_1Bytes = 2 + 2 + 4 + qk/2 // d, m, high bits, nibbles
	q8_0Bytes = 2 + qk           // d, 32 int8
	q8_1Bytes = 2 + 2 + qk       // d, s = d·Σq, 32 int8

	q4KBytes = 2 + 2 + 12 + qkK/2         // d, dmin, 6-bit scales and mins, nibbles
	q5KBytes = 2 + 2 + 12 + qkK/8 + qkK/2 // … plus one high bit per element
	q6KBytes = qkK/2 + qkK/4 + qkK/16 + 2 // low nibbles, high 2 bits, int8 scales, d
	q8KBytes = 4 + qkK + 2*qkK/16         // float32 d, 256 int8, 16 int16 sums of 16
)

// Supported reports whether this package handles weights of type t:
// Dequantize, ActivationType, QuantizeActivations, VecDot and MatMul take it.
// The model loader checks this once per tensor.
func Supported(t gguf.Type) bool {
	switch t {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
		gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
		gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
		return true
	}
	return false
}

// RowBytes returns the bytes n elements of type t take. n must be a multiple
// of t's block size; RowBytes panics otherwise, or if t is unknown.
func RowBytes(t gguf.Type, n int) int {
	bs, bb := int(t.BlockSize()), int(t.BlockBytes())
	if bs == 0 {
		panic(fmt.Sprintf("kernels: unknown type %v", t))
	}
	if n < 0 || n%bs != 0 {
		panic(fmt.Sprintf("kernels: %d elements is not a whole number of %v blocks of %d", n, t, bs))
	}
	return n / bs * bb
}

// ActivationType returns the type llama.cpp's CPU backend converts the
// activations to before taking dot products with weights of type weight
// (ggml-cpu's vec_dot_type): Q8_0 for Q4_0, Q5_0 and Q8_0; Q8_1 for Q4_1 and
// Q5_1; Q8_K for the k-quants; and the weight's own type for F32, F16, BF16.
func ActivationType(weight gguf.Type) gguf.Type {
	switch weight {
	case gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ8_0:
		return gguf.TypeQ8_0
	case gguf.TypeQ4_1, gguf.TypeQ5_1:
		return gguf.TypeQ8_1
	case gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
		return gguf.TypeQ8_K
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16:
		return weight
	}
	panic(fmt.Sprintf("kernels: unsupported weight type %v", weight))
}

// checkLen panics unless buf holds n elements of type t.
func checkLen(what string, t gguf.Type, n, have int) {
	if need := RowBytes(t, n); have < need {
		panic(fmt.Sprintf("kernels: %s: %d elements of %v need %d bytes, have %d", what, n, t, need, have))
	}
}

// f16 reads the little-endian half at b[0:2] as a float32.
func f16(b []byte) float32 {
	return gguf.F16ToFloat32(binary.LittleEndian.Uint16(b))
}

// putF16 stores f at b[0:2] as a half, rounding to nearest even (as F16C
// and ggml's GGML_FP32_TO_FP16 do).
func putF16(b []byte, f float32) {
	binary.LittleEndian.PutUint16(b, gguf.Float32ToF16(f))
}

// f32 reads the little-endian float32 at b[0:4].
func f32(b []byte) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func putF32(b []byte, f float32) {
	binary.LittleEndian.PutUint32(b, math.Float32bits(f))
}

// nearestInt is ggml's nearest_int, computed as ggml computes it: adding
// 1.5·2^23 rounds f to an integer (to nearest, ties to even) in the low
// mantissa bits, for |f| < 2^22; beyond that (ggml asserts) the result is
// as meaningless as ggml's, and as cheap.
func nearestInt(f float32) int {
	return int(int32(math.Float32bits(f+12582912)&0x007fffff) - 0x00400000)
}

// roundAway is C's roundf: round to nearest, ties away from zero. float64
// holds every float32 exactly, so rounding there is rounding the float32.
func roundAway(f float32) float32 {
	return float32(math.Round(float64(f)))
}
