//go:build amd64

package kernels

import (
	"encoding/binary"
	"unsafe"

	"github.com/neovratz/neovratz/internal/gguf"
	"golang.org/x/sys/cpu"
)

// The assembly kernels want AVX2 (integer lanes), FMA and F16C (half
// scales); every x86-64 CPU since Haswell and Zen 1 has all three.
var simdAvailable = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

const simdName = "avx2"

// Implemented in dot_amd64.s. The quant kernels take whole blocks, nb ≥ 1.

//go:noescape
func dotF32AVX2(x, y *float32, n int) float32

//go:noescape
func axpyF32AVX2(a float32, x, y *float32, n int)

//go:noescape
func dotF16AVX2(x, y *byte, n int) float32

//go:noescape
func dotBF16AVX2(x, y *byte, n int) float32

//go:noescape
func dotQ8_0AVX2(w, a *byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func dotQ4_0AVX2(w, a *byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func dotQ4_1AVX2(w, a *byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func dotQ5_0AVX2(w, a *byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func dotQ5_1AVX2(w, a *byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func dotQ4KAVX2(w, a *byte, nb int) float32

//go:noescape
func dotQ5KAVX2(w, a *byte, nb int) float32

//go:noescape
func dotQ6KAVX2(w, a *byte, nb int) float32

// The four-row kernels (dot4_amd64.s): activation row k at a + k·astride.

//go:noescape
func dotQ8_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)

//go:noescape
func dotQ4_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)

//go:noescape
func dotQ5_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)

//go:noescape
func dotQ4Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)

//go:noescape
func dotQ5Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)

//go:noescape
func dotQ6Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)

// Implemented in quant_amd64.s: nb ≥ 1 blocks of 32 (Q8_0, Q8_1) or 256 (Q8_K).

//go:noescape
func quantQ8_0ActAVX2(x *float32, y *byte, nb int)

//go:noescape
func quantQ8_1ActAVX2(x *float32, y *byte, nb int)

//go:noescape
func quantQ8KAVX2(x *float32, y *byte, nb int)

//go:noescape
func f32ToF16AVX2(x *float32, y *byte, n int)

//go:noescape
func madF16AVX2(y, x *uint16, v float32, n int)

//go:noescape
func scaleF16AVX2(y *uint16, v float32, n int)

// quantF16AVX2 converts to halves 8 at a time, the rest in Go.
func quantF16AVX2(src []float32, dst []byte) {
	n := len(src) &^ 7
	if n > 0 {
		f32ToF16AVX2(&src[0], &dst[0], n)
	}
	quantF16(src[n:], dst[2*n:])
}

// blockQuant adapts an activation quantizer over blocks of bs to
// typeKernels.actQ.
func blockQuant(kernel func(x *float32, y *byte, nb int), bs int) func(src []float32, dst []byte) {
	return func(src []float32, dst []byte) {
		if len(src) < bs {
			return
		}
		kernel(&src[0], &dst[0], len(src)/bs)
	}
}

// blockDot4 adapts a four-row assembly kernel over blocks of bs elements
// (activation blocks of ab bytes) to dot4Func.
func blockDot4(kernel func(w, a *byte, astride, nb int, out *[4]float32), bs, ab int) dot4Func {
	return func(n int, w, a []byte, astride int) (out [4]float32) {
		if n == 0 {
			return out
		}
		_ = a[3*astride+n/bs*ab-1] // the fourth row ends inside a
		kernel(&w[0], &a[0], astride, n/bs, &out)
		return out
	}
}

// tableDot adapts a 32-block assembly kernel that reads half scales
// through halfTable to dotFunc.
func tableDot(kernel func(w, a *byte, nb int, tab *[1 << 16]float32) float32) dotFunc {
	return func(n int, w, a []byte) float32 {
		if n == 0 {
			return 0
		}
		return kernel(&w[0], &a[0], n/qk, halfTable())
	}
}

// blockDot adapts an assembly kernel over blocks of bs elements to dotFunc.
// The exported callers have checked the lengths; an empty product is 0.
func blockDot(kernel func(w, a *byte, nb int) float32, bs int) dotFunc {
	return func(n int, w, a []byte) float32 {
		if n == 0 {
			return 0
		}
		return kernel(&w[0], &a[0], n/bs)
	}
}

func installSIMD(k *kernelTable) {
	k[gguf.TypeF32].dot = dotF32RowAVX2
	k[gguf.TypeF16].dot = dotF16RowAVX2
	k[gguf.TypeBF16].dot = dotBF16RowAVX2
	k[gguf.TypeQ8_0].dot = tableDot(dotQ8_0AVX2)
	k[gguf.TypeQ4_0].dot = tableDot(dotQ4_0AVX2)
	k[gguf.TypeQ4_1].dot = tableDot(dotQ4_1AVX2)
	k[gguf.TypeQ5_0].dot = tableDot(dotQ5_0AVX2)
	k[gguf.TypeQ5_1].dot = tableDot(dotQ5_1AVX2)
	k[gguf.TypeQ4_K].dot = blockDot(dotQ4KAVX2, qkK)
	k[gguf.TypeQ5_K].dot = blockDot(dotQ5KAVX2, qkK)
	k[gguf.TypeQ6_K].dot = blockDot(dotQ6KAVX2, qkK)
	k[gguf.TypeQ8_0].dot4 = blockDot4(dotQ8_0x4AVX2, qk, q8_0Bytes)
	k[gguf.TypeQ4_0].dot4 = blockDot4(dotQ4_0x4AVX2, qk, q8_0Bytes)
	k[gguf.TypeQ5_0].dot4 = blockDot4(dotQ5_0x4AVX2, qk, q8_0Bytes)
	k[gguf.TypeQ4_K].dot4 = blockDot4(dotQ4Kx4AVX2, qkK, q8KBytes)
	k[gguf.TypeQ5_K].dot4 = blockDot4(dotQ5Kx4AVX2, qkK, q8KBytes)
	k[gguf.TypeQ6_K].dot4 = blockDot4(dotQ6Kx4AVX2, qkK, q8KBytes)
	k[gguf.TypeQ8_0].actQ = blockQuant(quantQ8_0ActAVX2, qk)
	k[gguf.TypeQ8_1].actQ = blockQuant(quantQ8_1ActAVX2, qk)
	k[gguf.TypeQ8_K].actQ = blockQuant(quantQ8KAVX2, qkK)
	k[gguf.TypeF16].actQ = quantF16AVX2
	floatOps.dot = dotAVX2
	floatOps.axpy = axpyAVX2
	floatOps.swiglu = swigluAVX2Row
	floatOps.vecMat = vecMatAVX2Row
	halfOps.mad = madF16AVX2Row
	halfOps.scale = scaleF16AVX2Row
}

// madF16AVX2Row is ggml_vec_mad_f16 on AVX2: 32 halves at a time (8 per
// FMA), the rest as the scalar code does it.
func madF16AVX2Row(y, x []uint16, v float32) {
	n := len(x) &^ 31
	if n > 0 {
		madF16AVX2(&y[0], &x[0], v, n)
	}
	madF16Generic(y[n:], x[n:], v)
}

// scaleF16AVX2Row is ggml_vec_scale_f16 on AVX2.
func scaleF16AVX2Row(y []uint16, v float32) {
	n := len(y) &^ 31
	if n > 0 {
		scaleF16AVX2(&y[0], v, n)
	}
	scaleF16Generic(y[n:], v)
}

func dotAVX2(x, y []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return dotF32AVX2(&x[0], &y[0], len(x))
}

func axpyAVX2(a float32, x, y []float32) {
	if len(x) == 0 {
		return
	}
	axpyF32AVX2(a, &x[0], &y[0], len(x))
}

func dotF32RowAVX2(n int, w, a []byte) float32 {
	if n == 0 {
		return 0
	}
	return dotF32AVX2((*float32)(unsafe.Pointer(&w[0])), (*float32)(unsafe.Pointer(&a[0])), n)
}

// dotF16RowAVX2 is ggml_vec_dot_f16 on AVX2: 32 elements at a time in
// float32 lanes, the rest added in float64.
func dotF16RowAVX2(n int, w, a []byte) float32 {
	np := n &^ 31
	var s float64
	if np > 0 {
		s = float64(dotF16AVX2(&w[0], &a[0], np))
	}
	for i := np; i < n; i++ {
		s += float64(f16(w[2*i:]) * f16(a[2*i:]))
	}
	return float32(s)
}

// dotBF16RowAVX2 is ggml_vec_dot_bf16 on AVX2: 32 elements at a time in
// float32 lanes, the rest added in float64.
func dotBF16RowAVX2(n int, w, a []byte) float32 {
	np := n &^ 31
	var s float64
	if np > 0 {
		s = float64(dotBF16AVX2(&w[0], &a[0], np))
	}
	for i := np; i < n; i++ {
		x := gguf.BF16ToFloat32(binary.LittleEndian.Uint16(w[2*i:]))
		y := gguf.BF16ToFloat32(binary.LittleEndian.Uint16(a[2*i:]))
		s += float64(x * y)
	}
	return float32(s)
}

//go:noescape
func swigluAVX2(dst, gate, up *float32, n int)

// swigluAVX2Row runs swigluAVX2 over whole groups of 8, the rest in Go.
func swigluAVX2Row(dst, gate, up []float32) {
	dst = dst[:len(gate)]
	up = up[:len(gate)]
	n := len(gate) &^ 7
	if n > 0 {
		swigluAVX2(&dst[0], &gate[0], &up[0], n)
	}
	swigluGeneric(dst[n:], gate[n:], up[n:])
}

//go:noescape
func vecMatAVX2(out, a, m *float32, na, stride, n int)

// vecMatAVX2Row runs vecMatAVX2 over whole groups of 8 outputs, the rest in Go.
func vecMatAVX2Row(out, a, m []float32, stride int) {
	n := len(out) &^ 7
	if n > 0 {
		vecMatAVX2(&out[0], &a[0], &m[0], len(a), stride*4, n)
	}
	if n < len(out) {
		// Axpy's own arithmetic (a fused multiply-add per element) for the last few.
		tail := out[n:]
		clear(tail)
		for d, w := range a {
			axpyAVX2(w, m[d*stride+n:d*stride+len(out)], tail)
		}
	}
}
