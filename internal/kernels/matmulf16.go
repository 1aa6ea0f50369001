package kernels

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// MatMulF16 is MatMul for F16 weights with the activations as float32 rows
// that already hold F16 values (see RoundF16): every result is exactly
// MatMul's with those rows quantized to F16, since a half widens to float32
// exactly. Widening each activation once, instead of in every dot product,
// lets the AVX2 kernel pass over a weight row for three activation rows at
// a time with one conversion per weight: the convolutions of the diffusion
// models spend most of their time here.
func MatMulF16(dst []float32, w []byte, rows, cols int, acts []float32, nActs int, pool *Pool) {
	wrb := 2 * cols
	if rows < 0 || nActs < 0 || len(w) < rows*wrb || len(acts) < nActs*cols || len(dst) < nActs*rows {
		panic(fmt.Sprintf("kernels: MatMulF16 %dx%d by %d rows: weights %d bytes, activations %d, dst %d",
			rows, cols, nActs, len(w), len(acts), len(dst)))
	}
	if !simdOn || dotF16x3 == nil {
		a16 := make([]byte, nActs*wrb)
		QuantizeActivations(gguf.TypeF16, acts[:nActs*cols], a16)
		MatMul(dst, w, gguf.TypeF16, rows, cols, a16, nActs, pool)
		return
	}
	run := func(lo, hi int) {
		var out [3]float32
		for t0 := 0; t0 < nActs; t0 += f16Tile {
			t1 := min(t0+f16Tile, nActs)
			for r := lo; r < hi; r++ {
				row := w[r*wrb : (r+1)*wrb]
				a := t0
				for ; a+3 <= t1; a += 3 {
					dotF16x3(cols, row, acts[a*cols:(a+3)*cols], cols, &out)
					dst[a*rows+r], dst[(a+1)*rows+r], dst[(a+2)*rows+r] = out[0], out[1], out[2]
				}
				for ; a < t1; a++ {
					dotF16x3(cols, row, acts[a*cols:(a+1)*cols], 0, &out)
					dst[a*rows+r] = out[0]
				}
			}
		}
	}
	threads := pool.Threads()
	if rows*wrb*max(1, nActs) < minParallelBytes*threads {
		run(0, rows)
		return
	}
	chunk := max(4, (rows+8*threads-1)/(8*threads))
	chunk = min(chunk, max(4, chunkBytes/wrb))
	pool.Run(rows, chunk, run)
}

// f16Tile is MatMulF16's activation tile (actTile's counterpart, a
// multiple of the kernel's three rows).
const f16Tile = 15

// dotF16x3 sets out[k] to the F16 dot product of the n-element weight row
// w with the activation row a[k*stride:] for k < 3 (stride 0 repeats the
// first row); nil where there is no SIMD kernel.
var dotF16x3 func(n int, w []byte, a []float32, stride int, out *[3]float32)

// roundF16 is RoundF16's SIMD kernel for a multiple of 8 values; nil where
// there is none.
var roundF16 func(dst, x []float32)

// RoundF16 writes x rounded to the nearest F16 value (ties to even, as
// QuantizeActivations for F16 rounds) to dst, as float32; dst may be x.
func RoundF16(dst, x []float32) {
	dst = dst[:len(x)]
	n := 0
	if simdOn && roundF16 != nil {
		n = len(x) &^ 7
		if n > 0 {
			roundF16(dst[:n], x[:n])
		}
	}
	for i := n; i < len(x); i++ {
		dst[i] = gguf.F16ToFloat32(gguf.Float32ToF16(x[i]))
	}
}
