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

// ZERO4, ACT4 and STORE4 do four activation rows' worth of the above: the
// accumulators of four activations (the int sums and scales rotate
// through Z9-Z14, so that four rows' chains overlap).
#define ZERO4(a, b, c, d) \
	VPXORD a, a, a \
	VPXORD b, b, b \
	VPXORD c, c, c \
	VPXORD d, d, d

#define ACT4(t0, t1, t2, t3, a, b, c, d) \
	ACT(t0, Z9, Z10, a) \
	ACT(t1, Z11, Z12, b) \
	ACT(t2, Z13, Z14, c) \
	ACT(t3, Z9, Z10, d)

#define STORE4(a, b, c, d) \
	STORE(a) \
	STORE(b) \
	STORE(c) \
	STORE(d)

#define OUTARGS \
	MOVQ out+48(FP), AX \
	MOVQ ostride+56(FP), R10

// The one-activation kernels (decode): no packing. Each pair of rows i and
// i+8 goes through one VPDPBUSD against the activation block in both
// halves, and a tree of unpacks and adds reduces the sixteen rows' lanes to
// one int32 sum per row, in the packed groups' lane order; from there the
// arithmetic is the tile kernels'. The sums are exact whatever the order of
// the additions, so both paths give the same bits.

// ROWPTRS, with SI the first row, R8 the bytes of a row and AX the gather
// offsets, sets R9 = 3·R8, R10 = 5·R8, R11 = 7·R8, DX = row 8, R13 = row 16,
// Z30 the offsets and Z31 0x80 bytes. It is the common part of GEMVARGS and
// PACKROWS, so it comes before them.
#define ROWPTRS \
	VMOVDQU32 (AX), Z30 \
	LEAQ (R8)(R8*2), R9 \
	LEAQ (R8)(R8*4), R10 \
	LEAQ (R9)(R8*4), R11 \
	LEAQ (SI)(R8*8), DX \
	LEAQ (DX)(R8*8), R13 \
	MOVL $0x80808080, AX \
	VPBROADCASTD AX, Z31

// GEMVARGS loads (w *byte, wrb, nb int, q, side *byte, out *float32,
// offs *[16]int32): row pointers as PACKROWS, BX the prepared activation
// quants (32 bytes a block), R12 their side data (8 bytes a block).
#define GEMVARGS \
	MOVQ w+0(FP), SI \
	MOVQ wrb+8(FP), R8 \
	MOVQ nb+16(FP), CX \
	MOVQ q+24(FP), BX \
	MOVQ side+32(FP), R12 \
	MOVQ offs+48(FP), AX \
	ROWPTRS \
	VPXORD Z29, Z29, Z29

// DPPAIR adds the products of the unsigned weight bytes in z (rows i and
// i+8) with the activation in both halves of Z15 to a zeroed acc.
#define DPPAIR(z, acc) \
	VPXORD   acc, acc, acc \
	VPDPBUSD Z15, z, acc

// REDUCE16 sums the eight lanes of each row in Z16..Z23 (rows i and i+8 in
// Z(16+i)) into Z6, lane l holding row laneRow[l].
#define REDUCE16 \
	VPUNPCKLDQ  Z17, Z16, Z0 \
	VPUNPCKHDQ  Z17, Z16, Z1 \
	VPADDD      Z1, Z0, Z0 \
	VPUNPCKLDQ  Z19, Z18, Z1 \
	VPUNPCKHDQ  Z19, Z18, Z2 \
	VPADDD      Z2, Z1, Z1 \
	VPUNPCKLQDQ Z1, Z0, Z2 \
	VPUNPCKHQDQ Z1, Z0, Z3 \
	VPADDD      Z3, Z2, Z2 \
	VPUNPCKLDQ  Z21, Z20, Z0 \
	VPUNPCKHDQ  Z21, Z20, Z1 \
	VPADDD      Z1, Z0, Z0 \
	VPUNPCKLDQ  Z23, Z22, Z1 \
	VPUNPCKHDQ  Z23, Z22, Z3 \
	VPADDD      Z3, Z1, Z1 \
	VPUNPCKLQDQ Z1, Z0, Z4 \
	VPUNPCKHQDQ Z1, Z0, Z5 \
	VPADDD      Z5, Z4, Z4 \
	VSHUFI32X4  $0x88, Z4, Z2, Z6 \
	VSHUFI32X4  $0xdd, Z4, Z2, Z7 \
	VPADDD      Z7, Z6, Z6

// GEMVBLOCK finishes a block: the sums in Z6 from -128·Σa, then
// acc += float(sum) * (d_w * d_a) as the tile kernels do.
#define GEMVBLOCK \
	VPADDD.BCST 4(R12), Z6, Z6 \
	VCVTDQ2PS   Z6, Z6 \
	KXNORW      K1, K1, K1 \
	VPGATHERDD  (SI)(Z30*1), K1, Z8 \
	VPMOVDW     Z8, Y8 \
	VCVTPH2PS   Y8, Z8 \
	VMULPS.BCST (R12), Z8, Z8 \
	VMULPS      Z8, Z6, Z6 \
	VADDPS      Z6, Z29, Z29

#define GEMVOUT \
	MOVQ       out+40(FP), AX \
	VSHUFF32X4 $0xd8, Z29, Z29, Z29 \
	VMOVUPS    Z29, (AX) \
	VZEROUPPER \
	RET

// Q8PAIR loads rows at lo and hi as unsigned bytes (w+128) into z.
#define Q8PAIR(lo, hi, y, z) \
	VMOVDQU      lo, y \
	VINSERTI64X4 $1, hi, z, z \
	VPXORD       Z31, z, z

// UNPACK5U(qs, qh, y, x, t, tx) sets y (x its low half) to the 32 weights
// of a Q5_0 block as unsigned bytes q+112 (= q-16+128); t (tx) is scratch. Y11 holds
// 0x70 bytes, Y12 all ones, Y13 0x10 bytes, Y14 0x0f bytes.
#define UNPACK5U(qs, qh, y, x, t, tx) \
	VMOVDQU      qs, x \
	VPSRLW       $4, x, tx \
	VINSERTI128  $1, tx, y, y \
	VPAND        Y14, y, y \
	VPBROADCASTD qh, t \
	VPSHUFB      ·bitshuf(SB), t, t \
	VPOR         ·bitmask(SB), t, t \
	VPCMPEQB     Y12, t, t \
	VPAND        Y13, t, t \
	VPOR         t, y, y \
	VPADDB       Y11, y, y

// PACKROWS sets up the pointers of a packing loop: rows 0-7 at SI + k·R8
// (R9 = 3·R8, R10 = 5·R8, R11 = 7·R8), rows 8-15 the same from DX; Z30 the
// gather offsets, Z31 0x80 bytes.
#define PACKROWS \
	MOVQ w+0(FP), SI \
	MOVQ wrb+8(FP), R8 \
	MOVQ nb+16(FP), CX \
	MOVQ dst+24(FP), DI \
	MOVQ offs+32(FP), AX \
	ROWPTRS

// PREFETCHQ8 and PREFETCHQ5 fetch the next group's sixteen rows (the 16·wrb
// bytes after this group's, at R13) a block's share at a time: with rows of
// a few hundred bytes, sixteen short interleaved streams are too short for
// the hardware prefetchers, and the kernels would wait on memory.
#define PREFETCHQ8 \
	PREFETCHT0 (R13) \
	PREFETCHT0 64(R13) \
	PREFETCHT0 128(R13) \
	PREFETCHT0 192(R13) \
	PREFETCHT0 256(R13) \
	PREFETCHT0 320(R13) \
	PREFETCHT0 384(R13) \
	PREFETCHT0 448(R13) \
	PREFETCHT0 512(R13) \
	ADDQ       $544, R13

#define PREFETCHQ5 \
	PREFETCHT0 (R13) \
	PREFETCHT0 64(R13) \
	PREFETCHT0 128(R13) \
	PREFETCHT0 192(R13) \
	PREFETCHT0 256(R13) \
	PREFETCHT0 320(R13) \
	ADDQ       $352, R13

// LOADPAIR sets Z_i (Y_i) to the 32 signed weight bytes at lo in its low
// half and those at hi in its high half.
#define LOADPAIR(lo, hi, y, z) \
	VMOVDQU      lo, y \
	VINSERTI64X4 $1, hi, z, z

// TRANSPOSE16 turns Z0..Z7 (rows i and i+8 in Z_i) into the eight packed
// vectors W_j and stores them, offset by 128, at 64(DI)..512(DI). It
// leaves Y12-Y14 alone (packQ5_0VNNI's constants).
// A 4×4 transpose of dwords in every 128-bit lane first: S_k (k < 4) holds
// dword k of rows 0-3 in lane 0, dword k+4 in lane 1, and the same of rows
// 8-11 in lanes 2 and 3; S_{k+4} the same of rows 4-7 and 12-15. Then W_k
// is lanes 0 and 2 of S_k and of S_{k+4}, W_{k+4} lanes 1 and 3.
#define TRANSPOSE16 \
	VPUNPCKLDQ  Z1, Z0, Z8 \
	VPUNPCKHDQ  Z1, Z0, Z9 \
	VPUNPCKLDQ  Z3, Z2, Z10 \
	VPUNPCKHDQ  Z3, Z2, Z11 \
	VPUNPCKLDQ  Z5, Z4, Z24 \
	VPUNPCKHDQ  Z5, Z4, Z25 \
	VPUNPCKLDQ  Z7, Z6, Z26 \
	VPUNPCKHDQ  Z7, Z6, Z15 \
	VPUNPCKLQDQ Z10, Z8, Z16 \
	VPUNPCKHQDQ Z10, Z8, Z17 \
	VPUNPCKLQDQ Z11, Z9, Z18 \
	VPUNPCKHQDQ Z11, Z9, Z19 \
	VPUNPCKLQDQ Z26, Z24, Z20 \
	VPUNPCKHQDQ Z26, Z24, Z21 \
	VPUNPCKLQDQ Z15, Z25, Z22 \
	VPUNPCKHQDQ Z15, Z25, Z23 \
	VSHUFI32X4 $0x88, Z20, Z16, Z0 \
	VSHUFI32X4 $0xdd, Z20, Z16, Z4 \
	VSHUFI32X4 $0x88, Z21, Z17, Z1 \
	VSHUFI32X4 $0xdd, Z21, Z17, Z5 \
	VSHUFI32X4 $0x88, Z22, Z18, Z2 \
	VSHUFI32X4 $0xdd, Z22, Z18, Z6 \
	VSHUFI32X4 $0x88, Z23, Z19, Z3 \
	VSHUFI32X4 $0xdd, Z23, Z19, Z7 \
	VPXORD    Z31, Z0, Z0 \
	VPXORD    Z31, Z1, Z1 \
	VPXORD    Z31, Z2, Z2 \
	VPXORD    Z31, Z3, Z3 \
	VPXORD    Z31, Z4, Z4 \
	VPXORD    Z31, Z5, Z5 \
	VPXORD    Z31, Z6, Z6 \
	VPXORD    Z31, Z7, Z7 \
	VMOVDQU32 Z0, 64(DI) \
	VMOVDQU32 Z1, 128(DI) \
	VMOVDQU32 Z2, 192(DI) \
	VMOVDQU32 Z3, 256(DI) \
	VMOVDQU32 Z4, 320(DI) \
	VMOVDQU32 Z5, 384(DI) \
	VMOVDQU32 Z6, 448(DI) \
	VMOVDQU32 Z7, 512(DI)

// SCALES16 stores the sixteen rows' block scales as float32 at (DI): the
// half at the start of each row's block (SI + Z30), gathered as dwords.
#define SCALES16 \
	KXNORW     K1, K1, K1 \
	VPGATHERDD (SI)(Z30*1), K1, Z8 \
	VPMOVDW    Z8, Y8 \
	VCVTPH2PS  Y8, Z8 \
	VMOVUPS    Z8, (DI)

// packQ8_0VNNI(w *byte, wrb, nb int, dst *byte, offs *[16]int32) packs nb
// blocks of the 16 rows at w (row stride wrb); offs[l] = laneRow[l]·wrb.
TEXT ·packQ8_0VNNI(SB), NOSPLIT, $0-40
	PACKROWS

packq8:
	PREFETCHQ8
	LOADPAIR(2(SI), 2(DX), Y0, Z0)
	LOADPAIR(2(SI)(R8*1), 2(DX)(R8*1), Y1, Z1)
	LOADPAIR(2(SI)(R8*2), 2(DX)(R8*2), Y2, Z2)
	LOADPAIR(2(SI)(R9*1), 2(DX)(R9*1), Y3, Z3)
	LOADPAIR(2(SI)(R8*4), 2(DX)(R8*4), Y4, Z4)
	LOADPAIR(2(SI)(R10*1), 2(DX)(R10*1), Y5, Z5)
	LOADPAIR(2(SI)(R9*2), 2(DX)(R9*2), Y6, Z6)
	LOADPAIR(2(SI)(R11*1), 2(DX)(R11*1), Y7, Z7)
	TRANSPOSE16
	SCALES16
	ADDQ $34, SI
	ADDQ $34, DX
	ADDQ $PACKED, DI
	DECQ CX
	JNZ  packq8
	VZEROUPPER
	RET

// UNPACK5(qs, qh, off) writes the 32 weights of a Q5_0 block (quants at
// qs, high bits at qh), as
// signed bytes q-16, to off(DI): ggml's bytes_from_nibbles_32 for the low
// four bits, bytes_from_bits_32 for the fifth. Y12 holds all ones, Y13
// 0x10 bytes, Y14 0x0f bytes.
#define UNPACK5(qs, qh, off) \
	VMOVDQU      qs, X0 \
	VPSRLW       $4, X0, X1 \
	VINSERTI128  $1, X1, Y0, Y0 \
	VPAND        Y14, Y0, Y0 \
	VPBROADCASTD qh, Y1 \
	VPSHUFB      ·bitshuf(SB), Y1, Y1 \
	VPOR         ·bitmask(SB), Y1, Y1 \
	VPCMPEQB     Y12, Y1, Y1 \
	VPAND        Y13, Y1, Y1 \
	VPOR         Y1, Y0, Y0 \
	VPSUBB       Y13, Y0, Y0 \
	VMOVDQU      Y0, off(DI)

// packQ5_0VNNI is packQ8_0VNNI for Q5_0 blocks (22 bytes: d, qh, qs). The
// weights are unpacked into the block's own vector area first, then
// transposed in place.
TEXT ·packQ5_0VNNI(SB), NOSPLIT, $0-40
	PACKROWS
	VPCMPEQB Y12, Y12, Y12
	MOVL     $0x10101010, AX
	VMOVD    AX, X13
	VPBROADCASTD X13, Y13
	MOVL     $0x0f0f0f0f, AX
	VMOVD    AX, X14
	VPBROADCASTD X14, Y14

packq5:
	PREFETCHQ5
	UNPACK5(6(SI), 2(SI), 64)
	UNPACK5(6(SI)(R8*1), 2(SI)(R8*1), 96)
	UNPACK5(6(SI)(R8*2), 2(SI)(R8*2), 128)
	UNPACK5(6(SI)(R9*1), 2(SI)(R9*1), 160)
	UNPACK5(6(SI)(R8*4), 2(SI)(R8*4), 192)
	UNPACK5(6(SI)(R10*1), 2(SI)(R10*1), 224)
	UNPACK5(6(SI)(R9*2), 2(SI)(R9*2), 256)
	UNPACK5(6(SI)(R11*1), 2(SI)(R11*1), 288)
	UNPACK5(6(DX), 2(DX), 320)
	UNPACK5(6(DX)(R8*1), 2(DX)(R8*1), 352)
	UNPACK5(6(DX)(R8*2), 2(DX)(R8*2), 384)
	UNPACK5(6(DX)(R9*1), 2(DX)(R9*1), 416)
	UNPACK5(6(DX)(R8*4), 2(DX)(R8*4), 448)
	UNPACK5(6(DX)(R10*1), 2(DX)(R10*1), 480)
	UNPACK5(6(DX)(R9*2), 2(DX)(R9*2), 512)
	UNPACK5(6(DX)(R11*1), 2(DX)(R11*1), 544)
	LOADPAIR(64(DI), 320(DI), Y0, Z0)
	LOADPAIR(96(DI), 352(DI), Y1, Z1)
	LOADPAIR(128(DI), 384(DI), Y2, Z2)
	LOADPAIR(160(DI), 416(DI), Y3, Z3)
	LOADPAIR(192(DI), 448(DI), Y4, Z4)
	LOADPAIR(224(DI), 480(DI), Y5, Z5)
	LOADPAIR(256(DI), 512(DI), Y6, Z6)
	LOADPAIR(288(DI), 544(DI), Y7, Z7)
	TRANSPOSE16
	SCALES16
	ADDQ $22, SI
	ADDQ $22, DX
	ADDQ $PACKED, DI
	DECQ CX
	JNZ  packq5
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
	ZERO4(Z16, Z17, Z18, Z19)
	ZERO4(Z20, Z21, Z22, Z23)

x8:
	WLOAD
	ACT4(0, 1, 2, 3, Z16, Z17, Z18, Z19)
	ACT4(4, 5, 6, 7, Z20, Z21, Z22, Z23)
	NEXTBLOCK
	JNZ x8
	OUTARGS
	STORE4(Z16, Z17, Z18, Z19)
	STORE4(Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET

TEXT ·gemmQ8_0VNNIx4(SB), NOSPLIT, $0-64
	GEMMARGS
	ZERO4(Z16, Z17, Z18, Z19)

x4:
	WLOAD
	ACT4(0, 1, 2, 3, Z16, Z17, Z18, Z19)
	NEXTBLOCK
	JNZ x4
	OUTARGS
	STORE4(Z16, Z17, Z18, Z19)
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

// gemv1Q8_0VNNI(w *byte, wrb, nb int, q, side *byte, out *float32, offs *[16]int32)
// multiplies the 16 Q8_0 rows at w by one prepared activation row.
TEXT ·gemv1Q8_0VNNI(SB), NOSPLIT, $0-56
	GEMVARGS

g1q8:
	PREFETCHQ8
	VBROADCASTI64X4 (BX), Z15
	Q8PAIR(2(SI), 2(DX), Y0, Z0)
	Q8PAIR(2(SI)(R8*1), 2(DX)(R8*1), Y1, Z1)
	Q8PAIR(2(SI)(R8*2), 2(DX)(R8*2), Y2, Z2)
	Q8PAIR(2(SI)(R9*1), 2(DX)(R9*1), Y3, Z3)
	Q8PAIR(2(SI)(R8*4), 2(DX)(R8*4), Y4, Z4)
	Q8PAIR(2(SI)(R10*1), 2(DX)(R10*1), Y5, Z5)
	Q8PAIR(2(SI)(R9*2), 2(DX)(R9*2), Y6, Z6)
	Q8PAIR(2(SI)(R11*1), 2(DX)(R11*1), Y7, Z7)
	DPPAIR(Z0, Z16)
	DPPAIR(Z1, Z17)
	DPPAIR(Z2, Z18)
	DPPAIR(Z3, Z19)
	DPPAIR(Z4, Z20)
	DPPAIR(Z5, Z21)
	DPPAIR(Z6, Z22)
	DPPAIR(Z7, Z23)
	REDUCE16
	GEMVBLOCK
	ADDQ $34, SI
	ADDQ $34, DX
	ADDQ $32, BX
	ADDQ $8, R12
	DECQ CX
	JNZ  g1q8
	GEMVOUT

// Q5PAIR unpacks two rows' Q5_0 blocks (quants and high bits at qslo, qhlo for row i and at
// qshi, qhhi for row i+8) into Z0 and adds their products with the activation to a zeroed acc.
#define Q5PAIR(qslo, qhlo, qshi, qhhi, acc) \
	UNPACK5U(qslo, qhlo, Y0, X0, Y1, X1) \
	UNPACK5U(qshi, qhhi, Y2, X2, Y3, X3) \
	VINSERTI64X4 $1, Y2, Z0, Z0 \
	DPPAIR(Z0, acc)

// gemv1Q5_0VNNI is gemv1Q8_0VNNI for Q5_0 rows.
TEXT ·gemv1Q5_0VNNI(SB), NOSPLIT, $0-56
	GEMVARGS
	VPCMPEQB     Y12, Y12, Y12
	MOVL         $0x10101010, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x70707070, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11

g1q5:
	PREFETCHQ5
	VBROADCASTI64X4 (BX), Z15
	Q5PAIR(6(SI), 2(SI), 6(DX), 2(DX), Z16)
	Q5PAIR(6(SI)(R8*1), 2(SI)(R8*1), 6(DX)(R8*1), 2(DX)(R8*1), Z17)
	Q5PAIR(6(SI)(R8*2), 2(SI)(R8*2), 6(DX)(R8*2), 2(DX)(R8*2), Z18)
	Q5PAIR(6(SI)(R9*1), 2(SI)(R9*1), 6(DX)(R9*1), 2(DX)(R9*1), Z19)
	Q5PAIR(6(SI)(R8*4), 2(SI)(R8*4), 6(DX)(R8*4), 2(DX)(R8*4), Z20)
	Q5PAIR(6(SI)(R10*1), 2(SI)(R10*1), 6(DX)(R10*1), 2(DX)(R10*1), Z21)
	Q5PAIR(6(SI)(R9*2), 2(SI)(R9*2), 6(DX)(R9*2), 2(DX)(R9*2), Z22)
	Q5PAIR(6(SI)(R11*1), 2(SI)(R11*1), 6(DX)(R11*1), 2(DX)(R11*1), Z23)
	REDUCE16
	GEMVBLOCK
	ADDQ $22, SI
	ADDQ $22, DX
	ADDQ $32, BX
	ADDQ $8, R12
	DECQ CX
	JNZ  g1q5
	GEMVOUT
