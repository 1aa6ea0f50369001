//go:build amd64

#include "textflag.h"
#include "dot_amd64.h"

// Dot products of one weight row with four activation rows at once: the
// weight blocks are decoded once for all four, which is what makes batched
// decoding and prompt processing cheaper per row than one row at a time.
// Each of the four results is computed with exactly the operations, lanes
// and rounding order of the single-row kernel in dot_amd64.s, so it is bit
// for bit what that kernel (and ggml's AVX2 code) gives.
//
// Signature of all: func(w, a *byte, astride, nb int, out *[4]float32).
// Activation row k starts at a + k·astride. SI walks the weights, DI the
// first activation row; R8 = astride, R9 = 3·astride; CX counts blocks.

#define X4PROLOGUE \
	MOVQ w+0(FP), SI \
	MOVQ a+8(FP), DI \
	MOVQ astride+16(FP), R8 \
	MOVQ nb+24(FP), CX \
	LEAQ (R8)(R8*2), R9

// X4SCALES32 stores fp16(w.d)·fp16(a_k.d) for the four activation blocks
// of a 32-element block at 0(SP)..12(SP).
#define X4SCALES32 \
	HALF2F((SI), X8) \
	VBROADCASTSS X8, X8 \
	MOVWLZX      (DI), AX \
	VMOVD        AX, X9 \
	VPINSRW      $1, (DI)(R8*1), X9, X9 \
	VPINSRW      $2, (DI)(R8*2), X9, X9 \
	VPINSRW      $3, (DI)(R9*1), X9, X9 \
	VCVTPH2PS    X9, X9 \
	VMULPS       X9, X8, X9 \
	VMOVUPS      X9, 0(SP)

// X4ACT32 adds to acc the block of one activation row at amem against the
// signed weight bytes in Y2 (their magnitudes in Y5), scaled by soff(SP).
#define X4ACT32(amem, soff, acc) \
	VMOVDQU      amem, Y8 \
	VPSIGNB      Y2, Y8, Y8 \
	VPMADDUBSW   Y8, Y5, Y8 \
	VPMADDWD     Y15, Y8, Y8 \
	VCVTDQ2PS    Y8, Y8 \
	VBROADCASTSS soff(SP), Y9 \
	VFMADD231PS  Y8, Y9, acc

#define X4ACTS32 \
	VPSIGNB Y2, Y2, Y5 \
	X4ACT32(2(DI), 0, Y0) \
	X4ACT32(2(DI)(R8*1), 4, Y1) \
	X4ACT32(2(DI)(R8*2), 8, Y6) \
	X4ACT32(2(DI)(R9*1), 12, Y7)

// X4OUT32 reduces the four accumulators and stores them to out.
#define X4OUT32 \
	HSUMY(Y0, X0, X8) \
	HSUMY(Y1, X1, X8) \
	HSUMY(Y6, X6, X8) \
	HSUMY(Y7, X7, X8) \
	MOVQ   out+32(FP), AX \
	VMOVSS X0, 0(AX) \
	VMOVSS X1, 4(AX) \
	VMOVSS X6, 8(AX) \
	VMOVSS X7, 12(AX) \
	VZEROUPPER

#define X4ZERO32 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

// The k-quant kernels keep the four rows' int32 lanes in Y9..Y12 and walk
// a super-block in four steps of 64 elements: each step decodes 32 weight
// bytes into low and high nibbles (Y7, Y8) and their sub-block scales (Y4,
// Y5) once, then multiplies them with each row's activations. The frame:
//
//	0(SP)   Q4_K/Q5_K: the 8 int16 minimums; Q6_K: the 16 int16 scales
//	32(SP)  4 floats: y.d·fp16(x.d) of each activation row
//	48(SP)  4 floats: y.d·fp16(x.dmin) of each activation row
//	64(SP)  4 × 16 bytes: each row's minimum accumulator (Q4_K: 4 lanes,
//	        reduced at the end as ggml reduces acc_m; Q5_K: lane 0)

// X4YD gathers the four activation rows' float32 d into X11.
#define X4YD \
	VMOVSS    (DI), X11 \
	VINSERTPS $0x10, (DI)(R8*1), X11, X11 \
	VINSERTPS $0x20, (DI)(R8*2), X11, X11 \
	VINSERTPS $0x30, (DI)(R9*1), X11, X11

// X4KD stores d and dmin of each row (weights' halves at 0(SI), 2(SI)).
#define X4KD \
	X4YD \
	VMOVD        (SI), X8 \
	VCVTPH2PS    X8, X8 \
	VBROADCASTSS X8, X9 \
	VMOVSHDUP    X8, X10 \
	VBROADCASTSS X10, X10 \
	VMULPS       X11, X9, X9 \
	VMULPS       X11, X10, X10 \
	VMOVUPS      X9, 32(SP) \
	VMOVUPS      X10, 48(SP)

// X4KSCALES decodes the Q4_K/Q5_K scales (Y6, both lanes) and minimums
// (0(SP)), and zeroes the rows' lanes.
#define X4KSCALES \
	KSCALES \
	VEXTRACTI128 $1, Y6, X7 \
	VMOVDQU      X7, 0(SP) \
	VINSERTI128  $1, X6, Y6, Y6 \
	VPXOR        Y9, Y9, Y9 \
	VPXOR        Y10, Y10, Y10 \
	VPXOR        Y11, Y11, Y11 \
	VPXOR        Y12, Y12, Y12

// KPAIR adds one row's low (al) and high (ah) 32 activations against the
// nibbles in Y7, Y8 and the scales in Y4, Y5 to its lanes.
#define KPAIR(al, ah, sumi) \
	VPMADDUBSW al, Y7, Y13 \
	VPMADDWD   Y4, Y13, Y13 \
	VPADDD     Y13, sumi, sumi \
	VPMADDUBSW ah, Y8, Y13 \
	VPMADDWD   Y5, Y13, Y13 \
	VPADDD     Y13, sumi, sumi

// KROWS runs KPAIR on the four rows for the activation offsets lo, hi.
#define KROWS(lo, hi) \
	KPAIR(lo(DI), hi(DI), Y9) \
	KPAIR(lo(DI)(R8*1), hi(DI)(R8*1), Y10) \
	KPAIR(lo(DI)(R8*2), hi(DI)(R8*2), Y11) \
	KPAIR(lo(DI)(R9*1), hi(DI)(R9*1), Y12)

// K4STEP decodes 32 Q4_K quant bytes at qoff(SI) and the scales of their two
// sub-blocks (shuffles soff, soff2), then runs the rows.
#define K4STEP(qoff, soff, soff2, lo, hi) \
	VMOVDQU qoff(SI), Y7 \
	VPSRLW  $4, Y7, Y8 \
	VPAND   Y14, Y7, Y7 \
	VPAND   Y14, Y8, Y8 \
	VPSHUFB ·k4shuf+soff(SB), Y6, Y4 \
	VPSHUFB ·k4shuf+soff2(SB), Y6, Y5 \
	KROWS(lo, hi)

// K5STEP is K4STEP for Q5_K: fifth bits b1 and b2 from qh at 16(SI); Y15
// holds 0x01 bytes.
#define K5STEP(qoff, soff, soff2, lo, hi, b1, b2) \
	VMOVDQU qoff(SI), Y7 \
	VPSRLW  $4, Y7, Y8 \
	VPAND   Y14, Y7, Y7 \
	VPAND   Y14, Y8, Y8 \
	VMOVDQU 16(SI), Y13 \
	VPSRLW  $b1, Y13, Y4 \
	VPAND   Y15, Y4, Y4 \
	VPSLLW  $4, Y4, Y4 \
	VPADDB  Y4, Y7, Y7 \
	VPSRLW  $b2, Y13, Y4 \
	VPAND   Y15, Y4, Y4 \
	VPSLLW  $4, Y4, Y4 \
	VPADDB  Y4, Y8, Y8 \
	VPSHUFB ·k4shuf+soff(SB), Y6, Y4 \
	VPSHUFB ·k4shuf+soff2(SB), Y6, Y5 \
	KROWS(lo, hi)

// KMINS4 sets X4 to minimum·(sums of 32 activations) of the row whose
// block sums are at bsums, as KMINS.
#define KMINS4(bsums) \
	VMOVDQU      bsums, Y4 \
	VEXTRACTI128 $1, Y4, X5 \
	VPHADDW      X5, X4, X4 \
	VPMADDWD     0(SP), X4, X4

// K4FIN finishes a Q4_K super-block for one row: acc += d·lanes, and the
// row's minimum accumulator at macc(SP) -= dmin·(minimum sums).
#define K4FIN(bsums, doff, macc, acc, sumi) \
	VCVTDQ2PS    sumi, sumi \
	VBROADCASTSS doff(SP), Y4 \
	VFMADD231PS  sumi, Y4, acc \
	KMINS4(bsums) \
	VCVTDQ2PS    X4, X4 \
	VBROADCASTSS doff+16(SP), X5 \
	VMOVUPS      macc(SP), X7 \
	VFNMADD231PS X4, X5, X7 \
	VMOVUPS      X7, macc(SP)

// K5FIN is K4FIN for Q5_K, whose minimum sums ggml adds to one integer and
// subtracts in a scalar.
#define K5FIN(bsums, doff, macc, acc, sumi) \
	VCVTDQ2PS    sumi, sumi \
	VBROADCASTSS doff(SP), Y4 \
	VFMADD231PS  sumi, Y4, acc \
	KMINS4(bsums) \
	VPXOR        X5, X5, X5 \
	VPHADDD      X5, X4, X4 \
	VPHADDD      X5, X4, X4 \
	VCVTDQ2PS    X4, X4 \
	VMOVSS       doff+16(SP), X5 \
	VMOVSS       macc(SP), X7 \
	VFNMADD231SS X4, X5, X7 \
	VMOVSS       X7, macc(SP)

// KFINS runs fin on the four rows.
#define KFINS(fin) \
	fin(260(DI), 32, 64, Y0, Y9) \
	fin(260(DI)(R8*1), 36, 80, Y1, Y10) \
	fin(260(DI)(R8*2), 40, 96, Y2, Y11) \
	fin(260(DI)(R9*1), 44, 112, Y3, Y12)

#define X4KZERO \
	VXORPS  Y0, Y0, Y0 \
	VXORPS  Y1, Y1, Y1 \
	VXORPS  Y2, Y2, Y2 \
	VXORPS  Y3, Y3, Y3 \
	VMOVUPS Y0, 64(SP) \
	VMOVUPS Y0, 96(SP)

// X4KOUT stores hsum(acc) + the row's reduced minimum accumulator (reduce:
// HSUM4 for Q4_K, NOREDUCE where it sits in lane 0) for each row.
#define X4KOUT(reduce) \
	VMOVUPS 64(SP), X4 \
	VMOVUPS 80(SP), X5 \
	VMOVUPS 96(SP), X6 \
	VMOVUPS 112(SP), X7 \
	reduce(X4, X8) \
	reduce(X5, X8) \
	reduce(X6, X8) \
	reduce(X7, X8) \
	HSUMY(Y0, X0, X8) \
	HSUMY(Y1, X1, X8) \
	HSUMY(Y2, X2, X8) \
	HSUMY(Y3, X3, X8) \
	VADDSS  X4, X0, X0 \
	VADDSS  X5, X1, X1 \
	VADDSS  X6, X2, X2 \
	VADDSS  X7, X3, X3 \
	MOVQ    out+32(FP), AX \
	VMOVSS  X0, 0(AX) \
	VMOVSS  X1, 4(AX) \
	VMOVSS  X2, 8(AX) \
	VMOVSS  X3, 12(AX) \
	VZEROUPPER

#define NOREDUCE(x, tmp)

// K6ROW adds one row's 32 activations at a against the 6-bit quants in Y7
// and the int16 scales of their two groups in Y8 to its lanes.
#define K6ROW(a, sumi) \
	VPMADDUBSW a, Y7, Y13 \
	VPMADDWD   Y8, Y13, Y13 \
	VPADDD     Y13, sumi, sumi

#define K6ROWS(off) \
	K6ROW(off(DI), Y9) \
	K6ROW(off(DI)(R8*1), Y10) \
	K6ROW(off(DI)(R8*2), Y11) \
	K6ROW(off(DI)(R9*1), Y12)

// K6SCALE sets Y8 to the int16 scales picked by shuffle soff from the int8
// scales in X15.
#define K6SCALE(soff) \
	VPSHUFB   ·q6shuf+soff(SB), X15, X8 \
	VPMOVSXBW X8, Y8

// K6HALF runs the four quarters of a Q6_K half: it builds each quarter's
// 6-bit quants in Y7 from the low nibbles at ql, ql2 (Y4, Y5) and the high
// bit pairs at qh (Y6), as dotQ6KAVX2 does, then runs the rows with
// activations at a0..a3 and scale shuffles s0..s3.
#define K6HALF(ql, ql2, qh, a0, a1, a2, a3, s0, s1, s2, s3) \
	VMOVDQU ql(SI), Y4 \
	VMOVDQU ql2(SI), Y5 \
	VMOVDQU qh(SI), Y6 \
	VPAND   ·m3(SB), Y6, Y7 \
	VPSLLW  $4, Y7, Y7 \
	VPAND   Y14, Y4, Y13 \
	VPOR    Y13, Y7, Y7 \
	K6SCALE(s0) \
	K6ROWS(a0) \
	VPAND   ·m12(SB), Y6, Y7 \
	VPSLLW  $2, Y7, Y7 \
	VPAND   Y14, Y5, Y13 \
	VPOR    Y13, Y7, Y7 \
	K6SCALE(s1) \
	K6ROWS(a1) \
	VPAND   ·m48(SB), Y6, Y7 \
	VPSRLW  $4, Y4, Y13 \
	VPAND   Y14, Y13, Y13 \
	VPOR    Y13, Y7, Y7 \
	K6SCALE(s2) \
	K6ROWS(a2) \
	VPAND   ·m192(SB), Y6, Y7 \
	VPSRLW  $2, Y7, Y7 \
	VPSRLW  $4, Y5, Y13 \
	VPAND   Y14, Y13, Y13 \
	VPOR    Y13, Y7, Y7 \
	K6SCALE(s3) \
	K6ROWS(a3)

// K6FIN finishes a Q6_K super-block for one row: lanes minus 32·Σ scale·bsum
// (the scales as int16 at 0(SP)), times d, into acc.
#define K6FIN(bsums, doff, macc, acc, sumi) \
	VMOVDQU      0(SP), Y4 \
	VPMADDWD     bsums, Y4, Y4 \
	VPSLLD       $5, Y4, Y4 \
	VPSUBD       Y4, sumi, sumi \
	VCVTDQ2PS    sumi, sumi \
	VBROADCASTSS doff(SP), Y4 \
	VFMADD231PS  sumi, Y4, acc

// func dotQ8_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ8_0x4AVX2(SB), NOSPLIT, $16-40
	X4PROLOGUE
	X4ZERO32
	BCAST32($0x00010001, X15, Y15)

q80x4loop:
	PREFETCHT0 4096(SI)
	X4SCALES32
	VMOVDQU 2(SI), Y2
	X4ACTS32
	ADDQ    $34, SI
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q80x4loop
	X4OUT32
	RET

// func dotQ4_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ4_0x4AVX2(SB), NOSPLIT, $16-40
	X4PROLOGUE
	X4ZERO32
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x08080808, X13, Y13)

q40x4loop:
	PREFETCHT0 4096(SI)
	X4SCALES32
	NIBBLES(2(SI))
	VPSUBB Y13, Y2, Y2
	X4ACTS32
	ADDQ   $18, SI
	ADDQ   $34, DI
	DECQ   CX
	JNZ    q40x4loop
	X4OUT32
	RET

// func dotQ5_0x4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ5_0x4AVX2(SB), NOSPLIT, $16-40
	X4PROLOGUE
	X4ZERO32
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)
	VPCMPEQB Y12, Y12, Y12
	BCAST32($0xf0f0f0f0, X11, Y11)

q50x4loop:
	PREFETCHT0 4096(SI)
	X4SCALES32
	NIBBLES(6(SI))
	HIGHBITS(2(SI))
	VPANDN Y11, Y3, Y3
	VPOR   Y3, Y2, Y2
	X4ACTS32
	ADDQ   $22, SI
	ADDQ   $34, DI
	DECQ   CX
	JNZ    q50x4loop
	X4OUT32
	RET

// func dotQ4Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ4Kx4AVX2(SB), NOSPLIT, $128-40
	X4PROLOGUE
	X4KZERO
	BCAST32($0x0f0f0f0f, X14, Y14)

q4kx4loop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	X4KD
	X4KSCALES
	K4STEP(16, 0, 32, 4, 36)
	K4STEP(48, 64, 96, 68, 100)
	K4STEP(80, 128, 160, 132, 164)
	K4STEP(112, 192, 224, 196, 228)
	KFINS(K4FIN)
	ADDQ       $144, SI
	ADDQ       $292, DI
	DECQ       CX
	JNZ        q4kx4loop
	X4KOUT(HSUM4)
	RET

// func dotQ5Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ5Kx4AVX2(SB), NOSPLIT, $128-40
	X4PROLOGUE
	X4KZERO
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x01010101, X15, Y15)

q5kx4loop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	X4KD
	X4KSCALES
	K5STEP(48, 0, 32, 4, 36, 0, 1)
	K5STEP(80, 64, 96, 68, 100, 2, 3)
	K5STEP(112, 128, 160, 132, 164, 4, 5)
	K5STEP(144, 192, 224, 196, 228, 6, 7)
	KFINS(K5FIN)
	ADDQ       $176, SI
	ADDQ       $292, DI
	DECQ       CX
	JNZ        q5kx4loop
	X4KOUT(NOREDUCE)
	RET

// func dotQ6Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ6Kx4AVX2(SB), NOSPLIT, $128-40
	X4PROLOGUE
	X4KZERO
	BCAST32($0x0f0f0f0f, X14, Y14)

q6kx4loop:
	PREFETCHT0   4096(SI)
	PREFETCHT0   4160(SI)
	PREFETCHT0   4224(SI)
	PREFETCHT0   4288(SI)
	X4YD
	HALF2F(208(SI), X8)
	VBROADCASTSS X8, X8
	VMULPS       X11, X8, X8
	VMOVUPS      X8, 32(SP)
	VMOVDQU      192(SI), X15
	VPMOVSXBW    X15, Y4
	VMOVDQU      Y4, 0(SP)
	VPXOR        Y9, Y9, Y9
	VPXOR        Y10, Y10, Y10
	VPXOR        Y11, Y11, Y11
	VPXOR        Y12, Y12, Y12
	K6HALF(0, 32, 128, 4, 36, 68, 100, 0, 16, 32, 48)
	K6HALF(64, 96, 160, 132, 164, 196, 228, 64, 80, 96, 112)
	KFINS(K6FIN)
	ADDQ         $210, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q6kx4loop
	X4KOUT(NOREDUCE)
	RET
