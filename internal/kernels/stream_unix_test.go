//go:build unix

package kernels

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// BenchmarkMatMulStreaming multiplies a matrix of about 250 MB, read from a
// file mapping as the engine reads a model, by one activation row: the
// situation of a decode step, where the weights come from memory rather
// than from the caches. MB/s here is the memory bandwidth the kernel gets.
func BenchmarkMatMulStreaming(b *testing.B) {
	for _, shape := range []struct {
		cols  int
		types []gguf.Type
	}{
		// Long rows (a multiple of 256 and of 32), and Qwen2.5-0.5B's rows
		// of 896 (q, k, v, o, gate, up): short rows the hardware prefetchers
		// follow less well.
		{7168, []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ5_0, gguf.TypeQ4_K, gguf.TypeQ6_K}},
		{896, []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ5_0}},
	} {
		for _, ty := range shape.types {
			benchmarkStreaming(b, ty, shape.cols)
		}
	}
}

func benchmarkStreaming(b *testing.B, ty gguf.Type, cols int) {
	wrb := RowBytes(ty, cols)
	{
		rows := (250 << 20) / wrb
		w := mapMatrix(b, quantized(ty, randomRows(1, 1, cols, 0.1)), rows)
		acts := activations(ty, randomRows(2, 1, cols, 1))
		dst := make([]float32, rows)
		for _, threads := range []int{1, 2} {
			for _, gemm := range gemmVariants(ty) {
				name := fmt.Sprintf("%v/%d/t%d", ty, cols, threads)
				if gemm {
					name += "/" + gemmName
				}
				b.Run(name, func(b *testing.B) {
					useGEMM(gemm)
					defer useGEMM(true)
					p := NewPool(threads)
					defer p.Close()
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						MatMul(dst, w, ty, rows, cols, acts, 1, p)
					}
				})
			}
		}
	}
}

// mapMatrix writes rows copies of row to a temporary file and maps it
// read-only; the mapping goes when the benchmark ends.
func mapMatrix(b *testing.B, row []byte, rows int) []byte {
	b.Helper()
	f, err := os.CreateTemp(b.TempDir(), "matrix")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1<<20)
	for r := 0; r < rows; r++ {
		buf = append(buf, row...)
		if len(buf)+len(row) > cap(buf) || r == rows-1 {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fd, err := syscall.Open(f.Name(), syscall.O_RDONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fd)
	m, err := syscall.Mmap(fd, 0, rows*len(row), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Munmap(m) })
	return m
}
