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

// The k-quant kernels decode a super-block's weights once into a frame
// buffer and run each activation row over it:
//
//	0(SP)    8 × 32 bytes: the unsigned quants of the 8 steps
//	256(SP)  8 × 32 bytes: int16 scales of each step, spread over lanes
//	512(SP)  Q4_K/Q5_K: 8 int16 minimums; Q6_K: 16 int16 scales
//	544(SP)  4 floats: d of each activation row (y.d·fp16(x.d))
//	560(SP)  4 floats: y.d·fp16(x.dmin) of each activation row
//
// Each activation row is then 8 × (maddubs, madd) into int32 lanes, as in
// the single-row kernels. R10 points at the activation row in hand.

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
	VMOVUPS      X9, 544(SP) \
	VMOVUPS      X10, 560(SP)

// X4KSCALES decodes the Q4_K/Q5_K scales and minimums: minimums to 512(SP),
// the per-step scale vectors to 256(SP).
#define X4KSCALES \
	KSCALES \
	VEXTRACTI128 $1, Y6, X8 \
	VMOVDQU      X8, 512(SP) \
	VINSERTI128  $1, X6, Y6, Y6 \
	VPSHUFB      ·k4shuf+0(SB), Y6, Y8 \
	VMOVDQU      Y8, 256(SP) \
	VPSHUFB      ·k4shuf+32(SB), Y6, Y8 \
	VMOVDQU      Y8, 288(SP) \
	VPSHUFB      ·k4shuf+64(SB), Y6, Y8 \
	VMOVDQU      Y8, 320(SP) \
	VPSHUFB      ·k4shuf+96(SB), Y6, Y8 \
	VMOVDQU      Y8, 352(SP) \
	VPSHUFB      ·k4shuf+128(SB), Y6, Y8 \
	VMOVDQU      Y8, 384(SP) \
	VPSHUFB      ·k4shuf+160(SB), Y6, Y8 \
	VMOVDQU      Y8, 416(SP) \
	VPSHUFB      ·k4shuf+192(SB), Y6, Y8 \
	VMOVDQU      Y8, 448(SP) \
	VPSHUFB      ·k4shuf+224(SB), Y6, Y8 \
	VMOVDQU      Y8, 480(SP)

// X4Q4UNPACK stores the low and high nibbles of 32 quant bytes at qoff(SI)
// to boff(SP) and boff+32(SP).
#define X4Q4UNPACK(qoff, boff, boff2) \
	VMOVDQU qoff(SI), Y8 \
	VPSRLW  $4, Y8, Y9 \
	VPAND   Y14, Y8, Y8 \
	VPAND   Y14, Y9, Y9 \
	VMOVDQU Y8, boff(SP) \
	VMOVDQU Y9, boff2(SP)

// X4Q5UNPACK is X4Q4UNPACK plus fifth bits b1, b2 from the bytes of Y10.
#define X4Q5UNPACK(qoff, boff, boff2, b1, b2) \
	VMOVDQU qoff(SI), Y8 \
	VPSRLW  $4, Y8, Y9 \
	VPAND   Y14, Y8, Y8 \
	VPAND   Y14, Y9, Y9 \
	VPSRLW  $b1, Y10, Y11 \
	VPAND   Y15, Y11, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPADDB  Y11, Y8, Y8 \
	VPSRLW  $b2, Y10, Y11 \
	VPAND   Y15, Y11, Y11 \
	VPSLLW  $4, Y11, Y11 \
	VPADDB  Y11, Y9, Y9 \
	VMOVDQU Y8, boff(SP) \
	VMOVDQU Y9, boff2(SP)

// X4STEP adds to Y9 step s: buffered quants at qoff(SP) times activations
// at aoff(R10), in int16 pairs, times the scales at soff(SP).
#define X4STEP(qoff, aoff, soff) \
	VMOVDQU    qoff(SP), Y8 \
	VPMADDUBSW aoff(R10), Y8, Y8 \
	VPMADDWD   soff(SP), Y8, Y8 \
	VPADDD     Y8, Y9, Y9

// X4KSUMI sets Y9 to the int32 lanes of one activation row (at R10) over
// the buffered super-block.
#define X4KSUMI \
	VPXOR Y9, Y9, Y9 \
	X4STEP(0, 4, 256) \
	X4STEP(32, 36, 288) \
	X4STEP(64, 68, 320) \
	X4STEP(96, 100, 352) \
	X4STEP(128, 132, 384) \
	X4STEP(160, 164, 416) \
	X4STEP(192, 196, 448) \
	X4STEP(224, 228, 480)

// X4KMINS sets X8 to minimum·(activation sums) for the row at R10, as KMINS.
#define X4KMINS \
	VMOVDQU      260(R10), Y8 \
	VEXTRACTI128 $1, Y8, X10 \
	VPHADDW      X10, X8, X8 \
	VPMADDWD     512(SP), X8, X8

// X4Q4KACT finishes one activation row of a Q4_K super-block: acc += d·sumi,
// accm -= dmin·(minimum sums), as dotQ4KAVX2.
#define X4Q4KACT(doff, acc, accm) \
	X4KSUMI \
	VCVTDQ2PS    Y9, Y9 \
	VBROADCASTSS doff(SP), Y8 \
	VFMADD231PS  Y9, Y8, acc \
	X4KMINS \
	VCVTDQ2PS    X8, X8 \
	VBROADCASTSS doff+16(SP), X10 \
	VFNMADD231PS X8, X10, accm

// X4ROWS runs act(doff, acc, accm) on each activation row.
#define X4ROWS(act) \
	MOVQ DI, R10 \
	act(544, Y0, X4) \
	LEAQ (DI)(R8*1), R10 \
	act(548, Y1, X5) \
	LEAQ (DI)(R8*2), R10 \
	act(552, Y2, X12) \
	LEAQ (DI)(R9*1), R10 \
	act(556, Y3, X13)

#define X4KZERO \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS X4, X4, X4 \
	VXORPS X5, X5, X5 \
	VXORPS X12, X12, X12 \
	VXORPS X13, X13, X13

// X4KOUT stores hsum(acc)+ the reduced accm for each row (HSUM4 for
// Q4_K's 4-lane minimums; Q5_K's sit in lane 0 already and pass none).
#define X4KOUT(reduce) \
	reduce(X4, X8) \
	reduce(X5, X8) \
	reduce(X12, X8) \
	reduce(X13, X8) \
	HSUMY(Y0, X0, X8) \
	HSUMY(Y1, X1, X8) \
	HSUMY(Y2, X2, X8) \
	HSUMY(Y3, X3, X8) \
	VADDSS X4, X0, X0 \
	VADDSS X5, X1, X1 \
	VADDSS X12, X2, X2 \
	VADDSS X13, X3, X3 \
	MOVQ   out+32(FP), AX \
	VMOVSS X0, 0(AX) \
	VMOVSS X1, 4(AX) \
	VMOVSS X2, 8(AX) \
	VMOVSS X3, 12(AX) \
	VZEROUPPER

#define NOREDUCE(x, tmp)

// X4Q5KACT is X4Q4KACT for Q5_K, whose minimums ggml sums to one integer
// and subtracts in a scalar.
#define X4Q5KACT(doff, acc, accm) \
	X4KSUMI \
	VCVTDQ2PS    Y9, Y9 \
	VBROADCASTSS doff(SP), Y8 \
	VFMADD231PS  Y9, Y8, acc \
	X4KMINS \
	VPXOR        X10, X10, X10 \
	VPHADDD      X10, X8, X8 \
	VPHADDD      X10, X8, X8 \
	VCVTDQ2PS    X8, X8 \
	VMOVSS       doff+16(SP), X10 \
	VFNMADD231SS X8, X10, accm

// X4Q6SCALE stores the int16 scale vector of step s (shuffle soff) of the
// int8 scales in X11 to boff(SP).
#define X4Q6SCALE(soff, boff) \
	VPSHUFB   ·q6shuf+soff(SB), X11, X8 \
	VPMOVSXBW X8, Y8 \
	VMOVDQU   Y8, boff(SP)

// X4Q6UNPACK stores the 6-bit quants of one half of a Q6_K block (low
// nibbles at qoff, qoff+32, high bit pairs at hoff) to boff..boff+96(SP).
#define X4Q6UNPACK(qoff, qoff2, hoff, boff0, boff1, boff2, boff3) \
	VMOVDQU qoff(SI), Y6 \
	VMOVDQU qoff2(SI), Y7 \
	VMOVDQU hoff(SI), Y8 \
	VPAND   ·m3(SB), Y8, Y9 \
	VPSLLW  $4, Y9, Y9 \
	VPAND   Y15, Y6, Y10 \
	VPOR    Y10, Y9, Y9 \
	VMOVDQU Y9, boff0(SP) \
	VPAND   ·m12(SB), Y8, Y9 \
	VPSLLW  $2, Y9, Y9 \
	VPAND   Y15, Y7, Y10 \
	VPOR    Y10, Y9, Y9 \
	VMOVDQU Y9, boff1(SP) \
	VPAND   ·m48(SB), Y8, Y9 \
	VPSRLW  $4, Y6, Y6 \
	VPAND   Y15, Y6, Y6 \
	VPOR    Y6, Y9, Y9 \
	VMOVDQU Y9, boff2(SP) \
	VPAND   ·m192(SB), Y8, Y9 \
	VPSRLW  $2, Y9, Y9 \
	VPSRLW  $4, Y7, Y7 \
	VPAND   Y15, Y7, Y7 \
	VPOR    Y7, Y9, Y9 \
	VMOVDQU Y9, boff3(SP)

// X4Q6KACT finishes one activation row of a Q6_K super-block as dotQ6KAVX2:
// sumi minus 32·Σ scale·bsum, times d.
#define X4Q6KACT(doff, acc, accm) \
	X4KSUMI \
	VMOVDQU      512(SP), Y8 \
	VPMADDWD     260(R10), Y8, Y8 \
	VPSLLD       $5, Y8, Y8 \
	VPSUBD       Y8, Y9, Y9 \
	VCVTDQ2PS    Y9, Y9 \
	VBROADCASTSS doff(SP), Y8 \
	VFMADD231PS  Y9, Y8, acc

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
TEXT ·dotQ4Kx4AVX2(SB), 0, $576-40
	X4PROLOGUE
	X4KZERO
	BCAST32($0x0f0f0f0f, X14, Y14)

q4kx4loop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	X4KD
	X4KSCALES
	X4Q4UNPACK(16, 0, 32)
	X4Q4UNPACK(48, 64, 96)
	X4Q4UNPACK(80, 128, 160)
	X4Q4UNPACK(112, 192, 224)
	X4ROWS(X4Q4KACT)
	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4kx4loop
	X4KOUT(HSUM4)
	RET

// func dotQ5Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ5Kx4AVX2(SB), 0, $576-40
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
	VMOVDQU 16(SI), Y10
	X4Q5UNPACK(48, 0, 32, 0, 1)
	X4Q5UNPACK(80, 64, 96, 2, 3)
	X4Q5UNPACK(112, 128, 160, 4, 5)
	X4Q5UNPACK(144, 192, 224, 6, 7)
	X4ROWS(X4Q5KACT)
	ADDQ    $176, SI
	ADDQ    $292, DI
	DECQ    CX
	JNZ     q5kx4loop
	X4KOUT(NOREDUCE)
	RET

// func dotQ6Kx4AVX2(w, a *byte, astride, nb int, out *[4]float32)
TEXT ·dotQ6Kx4AVX2(SB), 0, $576-40
	X4PROLOGUE
	X4KZERO
	BCAST32($0x0f0f0f0f, X15, Y15)

q6kx4loop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	PREFETCHT0 4288(SI)
	X4YD
	HALF2F(208(SI), X8)
	VBROADCASTSS X8, X8
	VMULPS       X11, X8, X8
	VMOVUPS      X8, 544(SP)
	VMOVDQU      192(SI), X11
	VPMOVSXBW    X11, Y8
	VMOVDQU      Y8, 512(SP)
	X4Q6SCALE(0, 256)
	X4Q6SCALE(16, 288)
	X4Q6SCALE(32, 320)
	X4Q6SCALE(48, 352)
	X4Q6SCALE(64, 384)
	X4Q6SCALE(80, 416)
	X4Q6SCALE(96, 448)
	X4Q6SCALE(112, 480)
	X4Q6UNPACK(0, 32, 128, 0, 32, 64, 96)
	X4Q6UNPACK(64, 96, 160, 128, 160, 192, 224)
	X4ROWS(X4Q6KACT)
	ADDQ         $210, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q6kx4loop
	X4KOUT(NOREDUCE)
	RET
