package kernels

import (
	"fmt"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// The benchmarks report weight bytes streamed per second (MB/s in go test's
// output): the figure that bounds decoding, which reads every weight once
// per token. Each runs with the SIMD kernels ("avx2") and the pure-Go ones
// ("generic"). Shapes are Qwen2.5-0.5B's feed-forward matrices: 4864 rows of
// 896 (gate, up) and 896 rows of 4864 (down). Rows of 896 are not a whole
// number of k-quant super-blocks, so the k-quants run on the second only
// (llama.cpp's converters give such matrices a 32-block type).
//
//	go test ./internal/kernels -run '^$' -bench . -benchtime 300ms

func impls(b *testing.B, f func(b *testing.B)) {
	type impl struct {
		name       string
		simd, gemm bool
	}
	list := []impl{{gemmName, true, true}, {simdName, true, false}, {"generic", false, false}}
	for _, im := range list {
		if im.simd && !simdAvailable || im.gemm && !gemmAvailable {
			continue
		}
		b.Run(im.name, func(b *testing.B) {
			useGEMM(im.gemm)
			useSIMD(im.simd)
			defer useGEMM(true)
			f(b)
		})
	}
}

// BenchmarkVecDot measures one dot product of a 4864-element row, weights
// and activations in cache: the kernel's compute rate.
func BenchmarkVecDot(b *testing.B) {
	const n = 4864
	for _, ty := range weightTypes {
		w := quantized(ty, randomRows(1, 1, n, 0.1))
		a := activations(ty, randomRows(2, 1, n, 1))
		b.Run(ty.String(), func(b *testing.B) {
			impls(b, func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				var s float32
				for b.Loop() {
					s += VecDot(ty, n, w, a)
				}
				sink = s
			})
		})
	}
}

var sink float32

// gemmVariants lists how MatMul can run ty here: on the int8 GEMM kernels
// (true) where this CPU has them for ty, and without (false).
func gemmVariants(ty gguf.Type) []bool {
	if gemmAvailable && useGEMM(true) && kernelsOf(ty).gemm != nil {
		return []bool{true, false}
	}
	return []bool{false}
}

// BenchmarkMatMul multiplies a Qwen2.5-0.5B feed-forward matrix by one
// activation row (decode) on 1 and 2 threads, and by 8 rows (8 sequences
// batched) on 2 threads.
func BenchmarkMatMul(b *testing.B) {
	shapes := [][2]int{{4864, 896}, {896, 4864}}
	for _, ty := range weightTypes {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			if cols%int(ty.BlockSize()) != 0 {
				continue
			}
			w := quantized(ty, randomRows(3, rows, cols, 0.1))
			for _, run := range []struct{ threads, acts int }{{1, 1}, {2, 1}, {2, 8}, {2, 128}} {
				acts := activations(ty, randomRows(4, run.acts, cols, 1))
				dst := make([]float32, rows*run.acts)
				name := fmt.Sprintf("%v/%dx%d/t%d/b%d", ty, rows, cols, run.threads, run.acts)
				b.Run(name, func(b *testing.B) {
					impls(b, func(b *testing.B) {
						p := NewPool(run.threads)
						defer p.Close()
						b.SetBytes(int64(len(w)))
						for b.Loop() {
							MatMul(dst, w, ty, rows, cols, acts, run.acts, p)
						}
					})
				})
			}
		}
	}
}

// BenchmarkMemoryRead streams 256 MiB of float32 through Dot: the machine's
// read bandwidth from DRAM on one and two threads, the ceiling for any
// weight kernel on a model larger than the caches.
func BenchmarkMemoryRead(b *testing.B) {
	const n = 64 << 20
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			b.SetBytes(4 * n)
			chunk := n / threads
			for b.Loop() {
				p.Run(n, chunk, func(lo, hi int) { sink = Dot(x[lo:hi], x[lo:hi]) })
			}
		})
	}
}

// BenchmarkQuantizeActivations measures the per-token cost of quantizing
// one 4864-wide activation row for each activation format.
func BenchmarkQuantizeActivations(b *testing.B) {
	x := randomRows(5, 1, 4864, 1)
	for _, ty := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_1, gguf.TypeQ4_K, gguf.TypeF16} {
		dst := make([]byte, RowBytes(ActivationType(ty), len(x)))
		b.Run(ActivationType(ty).String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				QuantizeActivations(ty, x, dst)
			}
		})
	}
}
