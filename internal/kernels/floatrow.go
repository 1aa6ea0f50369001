package kernels

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/neovratz/neovratz/internal/gguf"
)

// halfTable maps every half to its float32 (256 KiB, built on first use):
// one load instead of the branches of a conversion, as ggml's
// ggml_table_f32_f16 does where the CPU has no F16C.
var halfTable = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = gguf.F16ToFloat32(uint16(h))
	}
	return &t
})

// The unquantized formats: F32, F16 and BF16 rows, little-endian.

func dequantF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func quantF32(src []float32, dst []byte) {
	dst = dst[:4*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
	}
}

func dequantF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	tab := halfTable()
	for i := range dst {
		dst[i] = tab[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

func quantF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], gguf.Float32ToF16(x))
	}
}

func dequantBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = gguf.BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func quantBF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], gguf.Float32ToBF16(x))
	}
}

// The scalar dot products of ggml's vec.cpp multiply in float32 and sum the
// products in double (ggml_float); so do these.

func dotF32Row(n int, w, a []byte) float32 {
	w, a = w[:4*n], a[:4*n]
	var s float64
	for i := 0; i < n; i++ {
		x := math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
		s += float64(x * y)
	}
	return float32(s)
}

func dotF16Row(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	tab := halfTable()
	var s float64
	for i := 0; i < n; i++ {
		x := tab[binary.LittleEndian.Uint16(w[2*i:])]
		y := tab[binary.LittleEndian.Uint16(a[2*i:])]
		s += float64(x * y)
	}
	return float32(s)
}

func dotBF16Row(n int, w, a []byte) float32 {
	w, a = w[:2*n], a[:2*n]
	var s float64
	for i := 0; i < n; i++ {
		x := gguf.BF16ToFloat32(binary.LittleEndian.Uint16(w[2*i:]))
		y := gguf.BF16ToFloat32(binary.LittleEndian.Uint16(a[2*i:]))
		s += float64(x * y)
	}
	return float32(s)
}
