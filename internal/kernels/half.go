package kernels

import (
	"unsafe"

	"github.com/neovratz/neovratz/internal/gguf"
)

// Vectors of halves, for attention over an F16 KV cache the way ggml's
// vector flash attention computes it: the query rounded to F16, the scores
// by ggml_vec_dot_f16, and the weighted sum of values accumulated in F16 by
// ggml_vec_mad_f16 and ggml_vec_scale_f16, rounded after every update.

// DotF16 returns the dot product of x and y (len(x) halves; y must be at
// least as long), as ggml_vec_dot_f16.
func DotF16(x, y []uint16) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	y = y[:n]
	return kernelsOf(gguf.TypeF16).dot(n, halfBytes(x), halfBytes(y))
}

// MadF16 adds x·v to y in halves, y[i] = half(y[i] + x[i]·v) for i <
// len(x), as ggml_vec_mad_f16 (fused multiply-add in float32 lanes where
// SIMD does it, then one rounding to F16).
func MadF16(y, x []uint16, v float32) {
	y = y[:len(x)]
	halfOps.mad(y, x, v)
}

// ScaleF16 multiplies the halves in y by v, rounding each product to F16,
// as ggml_vec_scale_f16.
func ScaleF16(y []uint16, v float32) {
	halfOps.scale(y, v)
}

// halfBytes views halves as their little-endian bytes (the layout ggml and
// GGUF use; every platform with SIMD kernels here is little-endian, and the
// pure-Go F16 dot reads the bytes little-endian on any).
func halfBytes(h []uint16) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))
}

// halfOps holds the half kernels that have SIMD versions.
var halfOps = struct {
	mad   func(y, x []uint16, v float32)
	scale func(y []uint16, v float32)
}{madF16Generic, scaleF16Generic}

func madF16Generic(y, x []uint16, v float32) {
	tab := halfTable()
	y = y[:len(x)]
	for i, h := range x {
		y[i] = gguf.Float32ToF16(tab[y[i]] + float32(tab[h]*v))
	}
}

func scaleF16Generic(y []uint16, v float32) {
	tab := halfTable()
	for i, h := range y {
		y[i] = gguf.Float32ToF16(tab[h] * v)
	}
}
