//go:build amd64

#include "textflag.h"

// AVX-512 VNNI kernels for Q8_0 weights times Q8_0 activations, used by
// MatMul where the CPU has them (gemm_amd64.go). They work on sixteen weight
// rows at a time, one row per 32-bit lane: packQ8_0VNNI lays a group of
// sixteen rows out so that VPDPBUSD multiplies four bytes of each row by the
// same four activation bytes, and the gemm kernels then need no horizontal
// sums. Every lane computes what ggml's scalar ggml_vec_dot_q8_0_q8_0 does
// for its row: an exact int32 sum per block, then
// sumf += float(sumi) * (d_w * d_a), rounded at each step.
//
// VPDPBUSD multiplies unsigned by signed bytes, so the packed weights are
// w+128 (w XOR 0x80) and each block's sum starts from -128·Σa, which
// prepActsQ8_0VNNI computes once per activation block.
//
// Lane l of a packed group holds row laneRow[l] = 0-3, 8-11, 4-7, 12-15
// (the order the transpose leaves); the kernels put the rows back in order
// when they store.

// A packed block (576 bytes): the 16 weight scales as float32, then eight
// 64-byte vectors W_j whose lane l holds bytes 4j..4j+3 of row laneRow[l].
#define PACKED 576

// GEMMARGS loads the kernels' arguments:
// (w *byte, nb int, q *byte, qstride int, side *byte, sstride int, out *float32, ostride int).
// Activation t of the tile has its quants at q + t·32 and its side entry at
// side + t·8 in every block; its 16 results go to out + t·ostride.
#define GEMMARGS \
	MOVQ w+0(FP), SI \
	MOVQ nb+8(FP), CX \
	MOVQ q+16(FP), DX \
	MOVQ qstride+24(FP), R8 \
	MOVQ side+32(FP), BX \
	MOVQ sstride+40(FP), R9

// WLOAD loads a packed block: the scales to Z8, W_0..W_7 to Z0..Z7.
#define WLOAD \
	VMOVUPS   (SI), Z8 \
	VMOVDQU32 64(SI), Z0 \
	VMOVDQU32 128(SI), Z1 \
	VMOVDQU32 192(SI), Z2 \
	VMOVDQU32 256(SI), Z3 \
	VMOVDQU32 320(SI), Z4 \
	VMOVDQU32 384(SI), Z5 \
	VMOVDQU32 448(SI), Z6 \
	VMOVDQU32 512(SI), Z7

// ACT adds activation t's block to acc: the int32 sums of the sixteen rows,
// from -128·Σa, then acc += float(sum) * (d_w * d_a).
#define ACT(t, isum, scale, acc) \
	VPBROADCASTD  (t*8+4)(BX), isum \
	VPDPBUSD.BCST (t*32)(DX), Z0, isum \
	VPDPBUSD.BCST (t*32+4)(DX), Z1, isum \
	VPDPBUSD.BCST (t*32+8)(DX), Z2, isum \
	VPDPBUSD.BCST (t*32+12)(DX), Z3, isum \
	VPDPBUSD.BCST (t*32+16)(DX), Z4, isum \
	VPDPBUSD.BCST (t*32+20)(DX), Z5, isum \
	VPDPBUSD.BCST (t*32+24)(DX), Z6, isum \
	VPDPBUSD.BCST (t*32+28)(DX), Z7, isum \
	VCVTDQ2PS     isum, isum \
	VMULPS.BCST   (t*8)(BX), Z8, scale \
	VMULPS        scale, isum, isum \
	VADDPS        isum, acc, acc

#define NEXTBLOCK \
	ADDQ $PACKED, SI \
	ADDQ R8, DX \
	ADDQ R9, BX \
	DECQ CX

// STORE puts acc's lanes back in row order and stores them at (AX), then
// moves AX to the next activation's results.
#define STORE(acc) \
	VSHUFF32X4 $0xd8, acc, acc, acc \
	VMOVUPS    acc, (AX) \
	ADDQ       R10, AX

#define OUTARGS \
	MOVQ out+48(FP), AX \
	MOVQ ostride+56(FP), R10

// packQ8_0VNNI(w *byte, wrb, nb int, dst *byte, offs *[16]int32) packs nb
// blocks of the 16 rows at w (row stride wrb); offs[l] = laneRow[l]·wrb.
TEXT ·packQ8_0VNNI(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ wrb+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DI
	MOVQ offs+32(FP), AX
	VMOVDQU32 (AX), Z30
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	LEAQ (R9)(R8*4), R11
	LEAQ (SI)(R8*8), DX
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z31

pack:
	// Z_i: row i in the low 256 bits, row i+8 in the high.
	VMOVDQU      2(SI), Y0
	VINSERTI64X4 $1, 2(DX), Z0, Z0
	VMOVDQU      2(SI)(R8*1), Y1
	VINSERTI64X4 $1, 2(DX)(R8*1), Z1, Z1
	VMOVDQU      2(SI)(R8*2), Y2
	VINSERTI64X4 $1, 2(DX)(R8*2), Z2, Z2
	VMOVDQU      2(SI)(R9*1), Y3
	VINSERTI64X4 $1, 2(DX)(R9*1), Z3, Z3
	VMOVDQU      2(SI)(R8*4), Y4
	VINSERTI64X4 $1, 2(DX)(R8*4), Z4, Z4
	VMOVDQU      2(SI)(R10*1), Y5
	VINSERTI64X4 $1, 2(DX)(R10*1), Z5, Z5
	VMOVDQU      2(SI)(R9*2), Y6
	VINSERTI64X4 $1, 2(DX)(R9*2), Z6, Z6
	VMOVDQU      2(SI)(R11*1), Y7
	VINSERTI64X4 $1, 2(DX)(R11*1), Z7, Z7

	// A 4×4 transpose of dwords in every 128-bit lane: S_k (k < 4) holds
	// dword k of rows 0-3 in lane 0, dword k+4 in lane 1, and the same of
	// rows 8-11 in lanes 2 and 3; S_{k+4} the same of rows 4-7 and 12-15.
	VPUNPCKLDQ  Z1, Z0, Z8
	VPUNPCKHDQ  Z1, Z0, Z9
	VPUNPCKLDQ  Z3, Z2, Z10
	VPUNPCKHDQ  Z3, Z2, Z11
	VPUNPCKLDQ  Z5, Z4, Z12
	VPUNPCKHDQ  Z5, Z4, Z13
	VPUNPCKLDQ  Z7, Z6, Z14
	VPUNPCKHDQ  Z7, Z6, Z15
	VPUNPCKLQDQ Z10, Z8, Z16
	VPUNPCKHQDQ Z10, Z8, Z17
	VPUNPCKLQDQ Z11, Z9, Z18
	VPUNPCKHQDQ Z11, Z9, Z19
	VPUNPCKLQDQ Z14, Z12, Z20
	VPUNPCKHQDQ Z14, Z12, Z21
	VPUNPCKLQDQ Z15, Z13, Z22
	VPUNPCKHQDQ Z15, Z13, Z23

	// W_k = lanes 0, 2 of S_k and 0, 2 of S_{k+4}; W_{k+4} lanes 1, 3.
	VSHUFI32X4 $0x88, Z20, Z16, Z0
	VSHUFI32X4 $0xdd, Z20, Z16, Z4
	VSHUFI32X4 $0x88, Z21, Z17, Z1
	VSHUFI32X4 $0xdd, Z21, Z17, Z5
	VSHUFI32X4 $0x88, Z22, Z18, Z2
	VSHUFI32X4 $0xdd, Z22, Z18, Z6
	VSHUFI32X4 $0x88, Z23, Z19, Z3
	VSHUFI32X4 $0xdd, Z23, Z19, Z7

	VPXORD    Z31, Z0, Z0
	VPXORD    Z31, Z1, Z1
	VPXORD    Z31, Z2, Z2
	VPXORD    Z31, Z3, Z3
	VPXORD    Z31, Z4, Z4
	VPXORD    Z31, Z5, Z5
	VPXORD    Z31, Z6, Z6
	VPXORD    Z31, Z7, Z7
	VMOVDQU32 Z0, 64(DI)
	VMOVDQU32 Z1, 128(DI)
	VMOVDQU32 Z2, 192(DI)
	VMOVDQU32 Z3, 256(DI)
	VMOVDQU32 Z4, 320(DI)
	VMOVDQU32 Z5, 384(DI)
	VMOVDQU32 Z6, 448(DI)
	VMOVDQU32 Z7, 512(DI)

	// The scales: the dword at each row's block start, low half = d.
	KXNORW     K1, K1, K1
	VPGATHERDD (SI)(Z30*1), K1, Z8
	VPMOVDW    Z8, Y8
	VCVTPH2PS  Y8, Z8
	VMOVUPS    Z8, (DI)

	ADDQ $34, SI
	ADDQ $34, DX
	ADDQ $PACKED, DI
	DECQ CX
	JNZ  pack
	VZEROUPPER
	RET

// prepActsQ8_0VNNI(a *byte, nb int, q *byte, qstride int, side *byte, sstride int)
// copies the quants of the nb Q8_0 blocks at a to q + b·qstride and writes
// d (float32) and -128·Σq (int32) to side + b·sstride.
TEXT ·prepActsQ8_0VNNI(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ qstride+24(FP), R8
	MOVQ side+32(FP), DX
	MOVQ sstride+40(FP), R9
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Y15

prep:
	VMOVDQU    2(SI), Y0
	VMOVDQU    Y0, (DI)
	VPXOR      Y1, Y1, Y1
	VPDPBUSD   Y0, Y15, Y1
	VEXTRACTI128 $1, Y1, X2
	VPADDD     X2, X1, X1
	VPSHUFD    $0x4e, X1, X2
	VPADDD     X2, X1, X1
	VPSHUFD    $0xb1, X1, X2
	VPADDD     X2, X1, X1
	VMOVD      X1, AX
	NEGL       AX
	MOVL       AX, 4(DX)
	MOVWLZX    (SI), AX
	VMOVD      AX, X3
	VCVTPH2PS  X3, X3
	VMOVSS     X3, (DX)
	ADDQ $34, SI
	ADDQ R8, DI
	ADDQ R9, DX
	DECQ CX
	JNZ  prep
	VZEROUPPER
	RET

TEXT ·gemmQ8_0VNNIx8(SB), NOSPLIT, $0-64
	GEMMARGS
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

x8:
	WLOAD
	ACT(0, Z9, Z10, Z16)
	ACT(1, Z11, Z12, Z17)
	ACT(2, Z13, Z14, Z18)
	ACT(3, Z9, Z10, Z19)
	ACT(4, Z11, Z12, Z20)
	ACT(5, Z13, Z14, Z21)
	ACT(6, Z9, Z10, Z22)
	ACT(7, Z11, Z12, Z23)
	NEXTBLOCK
	JNZ x8
	OUTARGS
	STORE(Z16)
	STORE(Z17)
	STORE(Z18)
	STORE(Z19)
	STORE(Z20)
	STORE(Z21)
	STORE(Z22)
	STORE(Z23)
	VZEROUPPER
	RET

TEXT ·gemmQ8_0VNNIx4(SB), NOSPLIT, $0-64
	GEMMARGS
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19

x4:
	WLOAD
	ACT(0, Z9, Z10, Z16)
	ACT(1, Z11, Z12, Z17)
	ACT(2, Z13, Z14, Z18)
	ACT(3, Z9, Z10, Z19)
	NEXTBLOCK
	JNZ x4
	OUTARGS
	STORE(Z16)
	STORE(Z17)
	STORE(Z18)
	STORE(Z19)
	VZEROUPPER
	RET

TEXT ·gemmQ8_0VNNIx2(SB), NOSPLIT, $0-64
	GEMMARGS
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17

x2:
	WLOAD
	ACT(0, Z9, Z10, Z16)
	ACT(1, Z11, Z12, Z17)
	NEXTBLOCK
	JNZ x2
	OUTARGS
	STORE(Z16)
	STORE(Z17)
	VZEROUPPER
	RET

TEXT ·gemmQ8_0VNNIx1(SB), NOSPLIT, $0-64
	GEMMARGS
	VPXORD Z16, Z16, Z16

x1:
	WLOAD
	ACT(0, Z9, Z10, Z16)
	NEXTBLOCK
	JNZ x1
	OUTARGS
	STORE(Z16)
	VZEROUPPER
	RET
