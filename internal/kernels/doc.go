// Package kernels holds the numeric kernels of the native LLM engine.
//
// It knows ggml's block formats (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K, and the activation formats Q8_1 and Q8_K) byte for
// byte, as ggml-common.h lays them out, and offers for each:
//
//   - Dequantize, ggml's dequantize_row_*;
//   - Quantize, ggml's quantize_row_*_ref, the deterministic quantizers
//     llama-quantize uses without an importance matrix, so that fixture files
//     written here read in llama.cpp as they read here;
//   - VecDot, the dot product of a weight row with activations quantized the
//     way llama.cpp's CPU backend quantizes them for that weight type
//     (ActivationType, QuantizeActivations);
//   - MatMul, weight matrix times one or several activation rows, spread over
//     a Pool of persistent worker goroutines, blocked so that a batch of
//     activation rows reads the weights from memory once.
//
// float.go has the float kernels of a transformer layer: RMSNorm, Softmax,
// SiLU, SwiGLU, RoPE (normal and NeoX layouts), Dot and Axpy.
//
// Every kernel has a pure-Go version. On amd64 the dot products also have
// AVX2/FMA assembly, chosen at run time when the CPU has AVX2, FMA and F16C
// (SIMD reports which). Both reproduce ggml bit for bit, each its own
// counterpart: the pure-Go code ggml's scalar code (ggml_vec_dot_*_generic,
// the same integer sums per block scaled and summed in the same float
// order), the assembly ggml's AVX2 code (the same int32 lanes, FMAs and
// horizontal sums), as llama.cpp's x86 builds run it. The two orders differ,
// so the pure-Go and the AVX2 results agree to float rounding only.
// testdata/ggml.json holds ggml's own answers, which the tests compare
// against.
//
// Where the CPU has AVX-512 VNNI, MatMul multiplies Q8_0 and Q5_0 weights
// on int8 GEMM kernels (gemm.go, GEMM reports them) that work on sixteen
// weight rows at once and follow ggml's scalar order lane by lane, so their
// results are the pure-Go VecDot's bit for bit. Either way MatMul gives one
// answer per weight type whatever the batch and the threads (VecDot's, or on
// the GEMM path the pure-Go VecDot's), so a sequence's numbers do not depend
// on what it is batched with.
//
// Kernels panic on misuse (an unsupported type, a length that is not a
// multiple of the block size, a buffer too short), like a slice index out of
// range: shapes and types are checked once when a model loads (Supported,
// RowBytes), not on every call.
package kernels
