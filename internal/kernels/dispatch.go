package kernels

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// dotFunc is the dot product of n elements of a weight row w with n
// activations a in the weight type's activation format. n is a whole number
// of blocks and both slices are long enough: the exported wrappers check.
type dotFunc func(n int, w, a []byte) float32

// dot4Func is four dot products of one weight row w with the activation
// rows at a, a[astride:], a[2·astride:], a[3·astride:], each bit for bit
// what dotFunc gives.
type dot4Func func(n int, w, a []byte, astride int) [4]float32

// typeKernels gathers what this package does with one type.
type typeKernels struct {
	dequant func(src []byte, dst []float32) // len(dst) elements
	quant   func(src []float32, dst []byte) // reference quantizer, len(src) elements
	actQ    func(src []float32, dst []byte) // the CPU backend's quantizer, when t is an activation type
	dot     dotFunc                         // weight·activation, when t is a weight type
	dot4    dot4Func                        // four activation rows at once, where SIMD has it
	gemm    *groupGEMM                      // MatMul's int8 GEMM path, where SIMD has it
}

// generic holds the pure-Go kernels; active is what the exported functions
// use: generic, or generic with SIMD kernels over it (dispatch_amd64.go).
var generic, active kernelTable

// kernelTable is indexed by type; BF16 has the highest number used.
type kernelTable [gguf.TypeBF16 + 1]typeKernels

func init() {
	generic[gguf.TypeF32] = typeKernels{dequantF32, quantF32, quantF32, dotF32Row, nil, nil}
	generic[gguf.TypeF16] = typeKernels{dequantF16, quantF16, quantF16, dotF16Row, nil, nil}
	generic[gguf.TypeBF16] = typeKernels{dequantBF16, quantBF16, quantBF16, dotBF16Row, nil, nil}
	generic[gguf.TypeQ8_0] = typeKernels{dequantQ8_0, quantQ8_0, quantQ8_0Act, dotQ8_0, nil, nil}
	generic[gguf.TypeQ8_1] = typeKernels{dequantQ8_1, quantQ8_1, quantQ8_1Act, nil, nil, nil}
	generic[gguf.TypeQ4_0] = typeKernels{dequantQ4_0, quantQ4_0, nil, dotQ4_0, nil, nil}
	generic[gguf.TypeQ4_1] = typeKernels{dequantQ4_1, quantQ4_1, nil, dotQ4_1, nil, nil}
	generic[gguf.TypeQ5_0] = typeKernels{dequantQ5_0, quantQ5_0, nil, dotQ5_0, nil, nil}
	generic[gguf.TypeQ5_1] = typeKernels{dequantQ5_1, quantQ5_1, nil, dotQ5_1, nil, nil}
	generic[gguf.TypeQ4_K] = typeKernels{dequantQ4K, quantQ4K, nil, dotQ4K, nil, nil}
	generic[gguf.TypeQ5_K] = typeKernels{dequantQ5K, quantQ5K, nil, dotQ5K, nil, nil}
	generic[gguf.TypeQ6_K] = typeKernels{dequantQ6K, quantQ6K, nil, dotQ6K, nil, nil}
	generic[gguf.TypeQ8_K] = typeKernels{dequantQ8K, quantQ8K, quantQ8K, nil, nil, nil}
	useSIMD(true)
}

// useSIMD selects the SIMD kernels (where the CPU has them) or the pure-Go
// ones. It is not safe to call while kernels run: tests call it between runs.
// It reports whether SIMD kernels are in use afterwards.
func useSIMD(on bool) bool {
	active = generic
	halfOps.mad, halfOps.scale = madF16Generic, scaleF16Generic
	floatOps.dot, floatOps.axpy, floatOps.swiglu = dotGeneric, axpyGeneric, swigluGeneric
	floatOps.vecMat = vecMatGeneric
	simdOn = on && simdAvailable
	if simdOn {
		installSIMD(&active)
		if gemmOn && gemmAvailable {
			installGEMM(&active)
		}
	}
	return simdOn
}

// simdOn records whether active holds SIMD kernels.
var simdOn bool

// gemmOn selects the int8 GEMM kernels where the CPU has them; tests and
// benchmarks turn it off (useGEMM) to compare with the AVX2 kernels.
var gemmOn = true

// useGEMM turns the int8 GEMM kernels on or off (with SIMD on) and reports
// whether they are in use afterwards. Not safe while kernels run.
func useGEMM(on bool) bool {
	gemmOn = on
	useSIMD(true)
	return simdOn && gemmOn && gemmAvailable
}

// GEMM names the int8 matrix kernels MatMul uses for batches on this
// machine: "avx512vnni" where the CPU has AVX-512 VNNI (Q8_0 weights), ""
// where MatMul multiplies row by row with the dot products of SIMD().
func GEMM() string {
	if simdOn && gemmOn && gemmAvailable {
		return gemmName
	}
	return ""
}

// SIMD names the instruction set the kernels use on this machine: "avx2"
// (AVX2, FMA and F16C on amd64) or "generic" (pure Go).
func SIMD() string {
	if simdOn {
		return simdName
	}
	return "generic"
}

func kernelsOf(t gguf.Type) *typeKernels {
	if int(t) < len(active) {
		return &active[t]
	}
	return &typeKernels{}
}

// Dequantize converts len(dst) elements of type t from src to float32, as
// ggml's dequantize_row_* (Q8_1 and Q8_K included). len(dst) must be a
// whole number of t's blocks and src must hold them.
func Dequantize(t gguf.Type, src []byte, dst []float32) {
	k := kernelsOf(t)
	if k.dequant == nil {
		panic(fmt.Sprintf("kernels: Dequantize: unsupported type %v", t))
	}
	checkLen("Dequantize", t, len(dst), len(src))
	k.dequant(src, dst)
}

// Quantize converts src to type t into dst with ggml's reference quantizer
// for t (quantize_row_*_ref; a plain conversion for F32, F16, BF16), which is
// what llama-quantize writes when it has no importance matrix. len(src) must
// be a whole number of t's blocks and dst must have room for them.
func Quantize(t gguf.Type, src []float32, dst []byte) {
	k := kernelsOf(t)
	if k.quant == nil {
		panic(fmt.Sprintf("kernels: Quantize: unsupported type %v", t))
	}
	checkLen("Quantize", t, len(src), len(dst))
	k.quant(src, dst[:RowBytes(t, len(src))])
}

// QuantizeActivations converts activations x to ActivationType(weight) into
// dst, as llama.cpp's CPU backend does before a matrix product with weights of
// type weight on x86-64: Q8_0 and Q8_1 with ggml's AVX code (scale 127/max,
// rounding half to even), Q8_K with quantize_row_q8_K_ref, F16 and BF16 by
// rounding to nearest even. x may hold several rows back to back: blocks never
// straddle rows when the row length is a multiple of the block size.
func QuantizeActivations(weight gguf.Type, x []float32, dst []byte) {
	at := ActivationType(weight)
	checkLen("QuantizeActivations", at, len(x), len(dst))
	active[at].actQ(x, dst)
}

// VecDot returns the dot product of n elements of a weight row w of type
// weight with n activations a quantized by QuantizeActivations(weight, …):
// bit for bit ggml's ggml_vec_dot_* of the AVX2 build where SIMD() is
// "avx2", of the scalar code otherwise.
func VecDot(weight gguf.Type, n int, w, a []byte) float32 {
	k := kernelsOf(weight)
	if k.dot == nil {
		panic(fmt.Sprintf("kernels: VecDot: unsupported weight type %v", weight))
	}
	checkLen("VecDot weights", weight, n, len(w))
	checkLen("VecDot activations", ActivationType(weight), n, len(a))
	return k.dot(n, w, a)
}
