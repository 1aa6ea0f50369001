package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// rawBlocks returns rows of nb blocks of blockBytes bytes, each a half
// scale and random bytes: every quant random (for Q8_0, -128 included,
// which no quantizer writes but a hostile file may), scales finite and of
// either sign, from 2^-10 to 2^5.
func rawBlocks(seed uint64, rows, nb, blockBytes int) []byte {
	r := rng(seed)
	b := make([]byte, rows*nb*blockBytes)
	for i := range b {
		b[i] = byte(r.next())
	}
	for blk := 0; blk < rows*nb; blk++ {
		d := float32(math.Ldexp(float64(r.uniform()), int(r.next()%16)-10))
		putF16(b[blk*blockBytes:], d)
	}
	return b
}

// TestMatMulGEMM checks the int8 GEMM path bit for bit against the pure-Go
// dot product, whose arithmetic it follows, on raw blocks: rows that are and
// are not whole groups of 16, rows of one block and of a Qwen2.5-0.5B
// feed-forward row, activation counts that use every tile kernel and their
// remainders, one thread and several. It runs where the CPU has the kernels
// (AVX-512 VNNI); elsewhere MatMul has no such path to check.
func TestMatMulGEMM(t *testing.T) {
	if !useGEMM(true) {
		t.Skipf("no int8 GEMM kernels on this CPU (SIMD %s)", SIMD())
	}
	if got := GEMM(); got != gemmName {
		t.Fatalf("GEMM() = %q, want %q", got, gemmName)
	}
	for _, ty := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ5_0} {
		g := kernelsOf(ty).gemm
		if g == nil {
			t.Errorf("%v: no GEMM kernel", ty)
			continue
		}
		for _, cols := range []int{32, 96, 4864} {
			for _, rows := range []int{16, 33, 80} {
				testGEMMShape(t, ty, g, rows, cols)
			}
		}
	}
}

func testGEMMShape(t *testing.T, ty gguf.Type, g *groupGEMM, rows, cols int) {
	nb := cols / qk
	wrb := RowBytes(ty, cols)
	w := rawBlocks(uint64(rows*cols), rows, nb, wrb/nb)
	for _, nActs := range []int{1, 2, 3, 4, 5, 7, 8, 9, 17} {
		acts := rawBlocks(uint64(nActs+cols), nActs, nb, q8_0Bytes)
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/%dx%d/%d acts/%d threads", ty, rows, cols, nActs, threads), func(t *testing.T) {
				p := NewPool(threads)
				defer p.Close()
				dst := make([]float32, rows*nActs+1)
				dst[rows*nActs] = 42
				MatMul(dst, w, ty, rows, cols, acts, nActs, p)
				arb := nb * q8_0Bytes
				for a := 0; a < nActs; a++ {
					for r := 0; r < rows; r++ {
						want := g.rowDot(cols, w[r*wrb:(r+1)*wrb], acts[a*arb:(a+1)*arb])
						if got := dst[a*rows+r]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("dst[%d][%d] = %v, pure-Go dot %v", a, r, got, want)
						}
					}
				}
				if dst[rows*nActs] != 42 {
					t.Error("MatMul wrote past its output")
				}
			})
		}
	}
}

// TestUseGEMM checks that turning the GEMM kernels off puts MatMul back on
// the AVX2 dot products (VecDot's results) and that GEMM() says so.
func TestUseGEMM(t *testing.T) {
	defer useGEMM(true)
	if useGEMM(false) {
		t.Fatal("useGEMM(false) reports the GEMM kernels in use")
	}
	if got := GEMM(); got != "" {
		t.Fatalf("GEMM() = %q with the GEMM kernels off", got)
	}
	const rows, cols = 32, 256
	w := quantized(gguf.TypeQ8_0, randomRows(5, rows, cols, 0.1))
	acts := activations(gguf.TypeQ8_0, randomRows(6, 1, cols, 1))
	dst := make([]float32, rows)
	MatMul(dst, w, gguf.TypeQ8_0, rows, cols, acts, 1, nil)
	wrb := RowBytes(gguf.TypeQ8_0, cols)
	for r := range rows {
		if want := VecDot(gguf.TypeQ8_0, cols, w[r*wrb:(r+1)*wrb], acts); math.Float32bits(dst[r]) != math.Float32bits(want) {
			t.Fatalf("row %d: %v, VecDot %v", r, dst[r], want)
		}
	}
}
