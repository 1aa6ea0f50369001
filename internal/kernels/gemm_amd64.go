//go:build amd64

package kernels

import (
	"github.com/neovratz/neovratz/internal/gguf"
	"golang.org/x/sys/cpu"
)

// vnniAvailable reports the AVX-512 VNNI kernels' instructions (gemm_amd64.s):
// AVX-512 F and BW for the packing, VNNI for the products.
var vnniAvailable = simdAvailable && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// Implemented in gemm_amd64.s.

//go:noescape
func packQ8_0VNNI(w *byte, wrb, nb int, dst *byte, offs *[16]int32)

//go:noescape
func packQ5_0VNNI(w *byte, wrb, nb int, dst *byte, offs *[16]int32)

//go:noescape
func prepActsQ8_0VNNI(a *byte, nb int, q *byte, qstride int, side *byte, sstride int)

//go:noescape
func gemmQ8_0VNNIx8(w *byte, nb int, q *byte, qstride int, side *byte, sstride int, out *float32, ostride int)

//go:noescape
func gemmQ8_0VNNIx4(w *byte, nb int, q *byte, qstride int, side *byte, sstride int, out *float32, ostride int)

//go:noescape
func gemmQ8_0VNNIx2(w *byte, nb int, q *byte, qstride int, side *byte, sstride int, out *float32, ostride int)

//go:noescape
func gemmQ8_0VNNIx1(w *byte, nb int, q *byte, qstride int, side *byte, sstride int, out *float32, ostride int)

// laneRowOffsets returns offs[l] = laneRow[l]·wrb: the byte offset of the
// row that lane l of a packed group holds (see gemm_amd64.s).
func laneRowOffsets(wrb int) (offs [16]int32) {
	for l := range offs {
		offs[l] = int32(laneRow[l] * wrb)
	}
	return offs
}

// laneRow is the row of a group that each lane of the packed vectors holds:
// the order the kernels' transpose leaves the rows in.
var laneRow = [16]int{0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15}

// q8_0VNNI and q5_0VNNI are the groupGEMMs of Q8_0 and Q5_0 weights: blocks
// of 32, packed blocks of 576 bytes (16 float32 scales, then 16 rows × 32
// weight bytes), prepared Q8_0 activation blocks of 32 quants and 8 bytes of
// side data (d as float32, -128·Σq). Both weight types' scalar dots compute
// float(sumi)·(d_w·d_a) per block, so they share the tile kernels.
var (
	q8_0VNNI = vnniGEMM(packQ8_0VNNI, gemv1Q8_0VNNI, q8_0Bytes, dotQ8_0)
	q5_0VNNI = vnniGEMM(packQ5_0VNNI, gemv1Q5_0VNNI, q5_0Bytes, dotQ5_0)
)

func vnniGEMM(pack func(w *byte, wrb, nb int, dst *byte, offs *[16]int32),
	gemv func(w *byte, wrb, nb int, q, side *byte, out *float32, offs *[16]int32),
	blockBytes int, rowDot dotFunc) *groupGEMM {
	return &groupGEMM{
		packedBlock: 576,
		quantsBytes: 32,
		sideBytes:   8,
		blockSize:   qk,
		pack: func(w []byte, wrb, nb int, dst []byte) {
			_ = w[(groupRows-1)*wrb+nb*blockBytes-1]
			_ = dst[nb*576-1]
			offs := laneRowOffsets(wrb)
			pack(&w[0], wrb, nb, &dst[0], &offs)
		},
		prep: func(a []byte, nb int, q []byte, qstride int, side []byte, sstride int) {
			_ = a[nb*q8_0Bytes-1]
			_ = q[(nb-1)*qstride+31]
			_ = side[(nb-1)*sstride+7]
			prepActsQ8_0VNNI(&a[0], nb, &q[0], qstride, &side[0], sstride)
		},
		gemv: func(w []byte, wrb, nb int, q, side []byte, dst []float32) {
			_ = w[(groupRows-1)*wrb+nb*blockBytes-1]
			_ = q[nb*32-1]
			_ = side[nb*8-1]
			_ = dst[groupRows-1]
			offs := laneRowOffsets(wrb)
			gemv(&w[0], wrb, nb, &q[0], &side[0], f32Ptr(dst), &offs)
		},
		tile:   q8_0VNNITile,
		rowDot: rowDot,
	}
}

// q8_0VNNITile runs the tile kernels over n activation rows: eight, four,
// two or one at a time.
func q8_0VNNITile(packed []byte, nb int, q []byte, qstride int, side []byte, sstride int, dst []float32, ostride, n int) {
	_ = packed[nb*576-1]
	for n > 0 {
		_ = q[(nb-1)*qstride+n*32-1]
		_ = side[(nb-1)*sstride+n*8-1]
		_ = dst[(n-1)*ostride+groupRows-1]
		kernel, done := gemmQ8_0VNNIx1, 1
		switch {
		case n >= 8:
			kernel, done = gemmQ8_0VNNIx8, 8
		case n >= 4:
			kernel, done = gemmQ8_0VNNIx4, 4
		case n >= 2:
			kernel, done = gemmQ8_0VNNIx2, 2
		}
		kernel(&packed[0], nb, &q[0], qstride, &side[0], sstride, f32Ptr(dst), ostride*4)
		if n -= done; n > 0 {
			q, side, dst = q[done*32:], side[done*8:], dst[done*ostride:]
		}
	}
}

const gemmName = "avx512vnni"

// gemmAvailable reports whether installGEMM has kernels for this CPU.
var gemmAvailable = vnniAvailable

// installGEMM puts the int8 GEMM kernels over the AVX2 ones.
func installGEMM(k *kernelTable) {
	k[gguf.TypeQ8_0].gemm = q8_0VNNI
	k[gguf.TypeQ5_0].gemm = q5_0VNNI
}

//go:noescape
func gemv1Q8_0VNNI(w *byte, wrb, nb int, q, side *byte, out *float32, offs *[16]int32)

//go:noescape
func gemv1Q5_0VNNI(w *byte, wrb, nb int, q, side *byte, out *float32, offs *[16]int32)
