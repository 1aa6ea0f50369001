//go:build amd64

#include "textflag.h"

// AVX2/FMA/F16C dot products. Each mirrors the AVX2 branch of ggml-cpu's
// arch/x86/quants.c (or vec.cpp for F32/F16): the same int32 lanes, one
// float accumulator of 8 lanes fed by FMA, and ggml's horizontal sums, so
// that a product here rounds as llama.cpp's x86 build rounds it.
//
// Register conventions: SI walks the weights, DI the activations, CX
// counts blocks; Y0 is the accumulator.
//
// Every loop prefetches the weights 4 KiB ahead. A decode step streams the
// whole model once, mostly from a file mapping of 4 KiB pages, where the
// hardware prefetchers stop at each page boundary: prefetching a page ahead
// took a Q8_0 matrix-vector product of 250 MB from 7-8 to 15-16 GB/s on
// one core here (26 GB/s on two).

#include "dot_amd64.h"

// func dotF32AVX2(x, y *float32, n int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, DX
	ANDQ   $~31, DX
	JZ     f32tail

f32loop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, DX
	JNZ         f32loop

f32tail:
	REDUCE4
	ANDQ $31, CX
	JZ   f32done

f32rem:
	VMOVSS      (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         f32rem

f32done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyF32AVX2(a float32, x, y *float32, n int)
TEXT ·axpyF32AVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Y0
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX
	MOVQ         CX, DX
	ANDQ         $~31, DX
	JZ           axpytail

axpyloop:
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, DX
	JNZ         axpyloop

axpytail:
	ANDQ $31, CX
	JZ   axpydone

axpyrem:
	VMOVSS      (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS      X1, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         axpyrem

axpydone:
	VZEROUPPER
	RET

// func dotF16AVX2(x, y *byte, n int) float32
// n is a positive multiple of 32; the caller adds the rest in float64.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f16loop:
	PREFETCHT0 4096(SI)
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   (DI), Y5
	VFMADD231PS Y5, Y4, Y0
	VCVTPH2PS   16(SI), Y6
	VCVTPH2PS   16(DI), Y7
	VFMADD231PS Y7, Y6, Y1
	VCVTPH2PS   32(SI), Y4
	VCVTPH2PS   32(DI), Y5
	VFMADD231PS Y5, Y4, Y2
	VCVTPH2PS   48(SI), Y6
	VCVTPH2PS   48(DI), Y7
	VFMADD231PS Y7, Y6, Y3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $32, CX
	JNZ         f16loop
	REDUCE4
	VZEROUPPER
	MOVSS       X0, ret+24(FP)
	RET

// func dotBF16AVX2(x, y *byte, n int) float32
// n is a positive multiple of 32; the caller adds the rest in float64. As
// ggml_vec_dot_bf16 on AVX2: bf16 widened by a 16-bit shift, four
// accumulators, reduced as (0+2)+(1+3) then hsum_float_8's order.
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

bf16loop:
	PREFETCHT0 4096(SI)
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   (DI), Y5
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VFMADD231PS Y5, Y4, Y0
	VPMOVZXWD   16(SI), Y6
	VPMOVZXWD   16(DI), Y7
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS Y7, Y6, Y1
	VPMOVZXWD   32(SI), Y4
	VPMOVZXWD   32(DI), Y5
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VFMADD231PS Y5, Y4, Y2
	VPMOVZXWD   48(SI), Y6
	VPMOVZXWD   48(DI), Y7
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS Y7, Y6, Y3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $32, CX
	JNZ         bf16loop
	VADDPS      Y2, Y0, Y0
	VADDPS      Y3, Y1, Y1
	VADDPS      Y1, Y0, Y0
	HSUM8(X1)
	VZEROUPPER
	MOVSS       X0, ret+24(FP)
	RET

// func dotQ8_0AVX2(w, a *byte, nb int, tab *[65536]float32) float32
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-36
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	MOVQ   tab+24(FP), R11
	VXORPS Y0, Y0, Y0
	BCAST32($0x00010001, X15, Y15)

q80loop:
	PREFETCHT0 4096(SI)
	TBLOCKSCALE
	VMOVDQU     2(SI), Y2
	VMOVDQU     2(DI), Y3
	MULSUMI8
	VFMADD231PS Y3, Y1, Y0
	ADDQ        $34, SI
	ADDQ        $34, DI
	DECQ        CX
	JNZ         q80loop
	HSUM8(X1)
	VZEROUPPER
	MOVSS       X0, ret+32(FP)
	RET

// func dotQ4_0AVX2(w, a *byte, nb int, tab *[65536]float32) float32
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-36
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	MOVQ   tab+24(FP), R11
	VXORPS Y0, Y0, Y0
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x08080808, X13, Y13)

q40loop:
	PREFETCHT0 4096(SI)
	TBLOCKSCALE
	NIBBLES(2(SI))
	VPSUBB      Y13, Y2, Y2
	VMOVDQU     2(DI), Y3
	MULSUMI8
	VFMADD231PS Y3, Y1, Y0
	ADDQ        $18, SI
	ADDQ        $34, DI
	DECQ        CX
	JNZ         q40loop
	HSUM8(X1)
	VZEROUPPER
	MOVSS       X0, ret+32(FP)
	RET

// func dotQ4_1AVX2(w, a *byte, nb int, tab *[65536]float32) float32
TEXT ·dotQ4_1AVX2(SB), NOSPLIT, $0-36
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	MOVQ   tab+24(FP), R11
	VXORPS Y0, Y0, Y0
	VXORPS X5, X5, X5 // Σ m·s
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)

q41loop:
	PREFETCHT0 4096(SI)
	TBLOCKSCALE
	TMINSCALE
	NIBBLES(4(SI))
	VPMADDUBSW  4(DI), Y2, Y3
	VPMADDWD    Y15, Y3, Y3
	VCVTDQ2PS   Y3, Y3
	VFMADD231PS Y3, Y1, Y0
	ADDQ        $20, SI
	ADDQ        $36, DI
	DECQ        CX
	JNZ         q41loop
	HSUM8(X1)
	VADDSS      X5, X0, X0
	VZEROUPPER
	MOVSS       X0, ret+32(FP)
	RET

// func dotQ5_0AVX2(w, a *byte, nb int, tab *[65536]float32) float32
TEXT ·dotQ5_0AVX2(SB), NOSPLIT, $0-36
	MOVQ     w+0(FP), SI
	MOVQ     a+8(FP), DI
	MOVQ     nb+16(FP), CX
	MOVQ     tab+24(FP), R11
	VXORPS   Y0, Y0, Y0
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)
	VPCMPEQB Y12, Y12, Y12
	BCAST32($0xf0f0f0f0, X11, Y11)

q50loop:
	PREFETCHT0 4096(SI)
	TBLOCKSCALE
	NIBBLES(6(SI))
	HIGHBITS(2(SI))
	VPANDN      Y11, Y3, Y3 // 0xf0 where the fifth bit is clear: q-16 in two's complement
	VPOR        Y3, Y2, Y2
	VMOVDQU     2(DI), Y3
	MULSUMI8
	VFMADD231PS Y3, Y1, Y0
	ADDQ        $22, SI
	ADDQ        $34, DI
	DECQ        CX
	JNZ         q50loop
	HSUM8(X1)
	VZEROUPPER
	MOVSS       X0, ret+32(FP)
	RET

// func dotQ5_1AVX2(w, a *byte, nb int, tab *[65536]float32) float32
TEXT ·dotQ5_1AVX2(SB), NOSPLIT, $0-36
	MOVQ     w+0(FP), SI
	MOVQ     a+8(FP), DI
	MOVQ     nb+16(FP), CX
	MOVQ     tab+24(FP), R11
	VXORPS   Y0, Y0, Y0
	VXORPS   X5, X5, X5 // Σ m·s
	BCAST32($0x00010001, X15, Y15)
	BCAST32($0x0f0f0f0f, X14, Y14)
	VPCMPEQB Y12, Y12, Y12
	BCAST32($0x10101010, X10, Y10)

q51loop:
	PREFETCHT0 4096(SI)
	TBLOCKSCALE
	TMINSCALE
	NIBBLES(8(SI))
	HIGHBITS(4(SI))
	VPAND       Y10, Y3, Y3
	VPOR        Y3, Y2, Y2
	VPMADDUBSW  4(DI), Y2, Y3
	VPMADDWD    Y15, Y3, Y3
	VCVTDQ2PS   Y3, Y3
	VFMADD231PS Y1, Y3, Y0
	ADDQ        $24, SI
	ADDQ        $36, DI
	DECQ        CX
	JNZ         q51loop
	HSUM8(X1)
	VADDSS      X5, X0, X0
	VZEROUPPER
	MOVSS       X0, ret+32(FP)
	RET

// Q4KSTEP adds to Y9 the 64 elements of 32 quant bytes at qoff(SI) with
// the activations at aoff(DI), scaled by sub-block scales from Y6 through
// the shuffles at k4shuf+soff.
#define Q4KSTEP(qoff, aoff, aoff2, soff, soff2) \
	VMOVDQU    qoff(SI), Y2 \
	VPSRLW     $4, Y2, Y3 \
	VPAND      Y14, Y2, Y2 \
	VPAND      Y14, Y3, Y3 \
	VPMADDUBSW aoff(DI), Y2, Y2 \
	VPMADDUBSW aoff2(DI), Y3, Y3 \
	VPSHUFB    ·k4shuf+soff(SB), Y6, Y7 \
	VPSHUFB    ·k4shuf+soff2(SB), Y6, Y8 \
	VPMADDWD   Y7, Y2, Y2 \
	VPMADDWD   Y8, Y3, Y3 \
	VPADDD     Y2, Y3, Y2 \
	VPADDD     Y2, Y9, Y9

// func dotQ4KAVX2(w, a *byte, nb int) float32
TEXT ·dotQ4KAVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS X1, X1, X1 // minimums, 4 lanes
	BCAST32($0x0f0f0f0f, X14, Y14)

q4kloop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	KDSCALES
	KSCALES
	KMINS
	VCVTDQ2PS    X8, X8
	VFNMADD231PS X8, X5, X1
	VINSERTI128  $1, X6, Y6, Y6
	VPXOR        Y9, Y9, Y9
	Q4KSTEP(16, 4, 36, 0, 32)
	Q4KSTEP(48, 68, 100, 64, 96)
	Q4KSTEP(80, 132, 164, 128, 160)
	Q4KSTEP(112, 196, 228, 192, 224)
	VCVTDQ2PS    Y9, Y9
	VFMADD231PS  Y9, Y4, Y0
	ADDQ         $144, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q4kloop
	VMOVHLPS     X1, X1, X2
	VADDPS       X2, X1, X1
	VMOVSHDUP    X1, X2
	VADDSS       X2, X1, X1
	HSUM8(X2)
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// Q5KSTEP is Q4KSTEP with the fifth bits: bit b1 (low nibbles) and b2
// (high nibbles) of each byte of Y10.
#define Q5KSTEP(qoff, aoff, aoff2, soff, soff2, b1, b2) \
	VMOVDQU    qoff(SI), Y2 \
	VPSRLW     $4, Y2, Y3 \
	VPAND      Y14, Y2, Y2 \
	VPAND      Y14, Y3, Y3 \
	VPSRLW     $b1, Y10, Y7 \
	VPAND      Y13, Y7, Y7 \
	VPSLLW     $4, Y7, Y7 \
	VPADDB     Y7, Y2, Y2 \
	VPSRLW     $b2, Y10, Y8 \
	VPAND      Y13, Y8, Y8 \
	VPSLLW     $4, Y8, Y8 \
	VPADDB     Y8, Y3, Y3 \
	VPMADDUBSW aoff(DI), Y2, Y2 \
	VPMADDUBSW aoff2(DI), Y3, Y3 \
	VPSHUFB    ·k4shuf+soff(SB), Y6, Y7 \
	VPSHUFB    ·k4shuf+soff2(SB), Y6, Y8 \
	VPMADDWD   Y7, Y2, Y2 \
	VPMADDWD   Y8, Y3, Y3 \
	VPADDD     Y2, Y3, Y2 \
	VPADDD     Y2, Y9, Y9

// func dotQ5KAVX2(w, a *byte, nb int) float32
TEXT ·dotQ5KAVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS X1, X1, X1 // Σ dmin·(minimum sums), one lane
	VPXOR  X12, X12, X12
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x01010101, X13, Y13)

q5kloop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	KDSCALES
	KSCALES
	KMINS
	VPHADDD      X12, X8, X8
	VPHADDD      X12, X8, X8
	VCVTDQ2PS    X8, X8
	VFNMADD231SS X8, X5, X1
	VINSERTI128  $1, X6, Y6, Y6
	VMOVDQU      16(SI), Y10
	VPXOR        Y9, Y9, Y9
	Q5KSTEP(48, 4, 36, 0, 32, 0, 1)
	Q5KSTEP(80, 68, 100, 64, 96, 2, 3)
	Q5KSTEP(112, 132, 164, 128, 160, 4, 5)
	Q5KSTEP(144, 196, 228, 192, 224, 6, 7)
	VCVTDQ2PS    Y9, Y9
	VFMADD231PS  Y9, Y4, Y0
	ADDQ         $176, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q5kloop
	HSUM8(X2)
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// Q6KSCALE multiplies the int16 pairs of y by the int8 scales picked from
// X3 by the shuffle at q6shuf+soff, widened to int16.
#define Q6KSCALE(soff, y) \
	VPSHUFB   ·q6shuf+soff(SB), X3, X12 \
	VPMOVSXBW X12, Y12 \
	VPMADDWD  Y12, y, y

// Q6KHALF adds to Y5 the 128 elements of one half of a Q6_K block: low
// nibbles at qoff and qoff+32, high bit pairs at hoff, activations from aoff.
#define Q6KHALF(qoff, qoff2, hoff, a0, a1, a2, a3, s0, s1, s2, s3) \
	VMOVDQU    qoff(SI), Y6 \
	VMOVDQU    qoff2(SI), Y7 \
	VMOVDQU    hoff(SI), Y8 \
	VPAND      ·m3(SB), Y8, Y9 \
	VPSLLW     $4, Y9, Y9 \
	VPAND      ·m12(SB), Y8, Y10 \
	VPSLLW     $2, Y10, Y10 \
	VPAND      ·m48(SB), Y8, Y11 \
	VPAND      ·m192(SB), Y8, Y8 \
	VPSRLW     $2, Y8, Y8 \
	VPAND      Y15, Y6, Y12 \
	VPOR       Y12, Y9, Y9 \
	VPAND      Y15, Y7, Y12 \
	VPOR       Y12, Y10, Y10 \
	VPSRLW     $4, Y6, Y6 \
	VPAND      Y15, Y6, Y6 \
	VPOR       Y6, Y11, Y11 \
	VPSRLW     $4, Y7, Y7 \
	VPAND      Y15, Y7, Y7 \
	VPOR       Y7, Y8, Y8 \
	VPMADDUBSW a0(DI), Y9, Y9 \
	VPMADDUBSW a1(DI), Y10, Y10 \
	VPMADDUBSW a2(DI), Y11, Y11 \
	VPMADDUBSW a3(DI), Y8, Y8 \
	Q6KSCALE(s0, Y9) \
	Q6KSCALE(s1, Y10) \
	Q6KSCALE(s2, Y11) \
	Q6KSCALE(s3, Y8) \
	VPADDD     Y9, Y10, Y9 \
	VPADDD     Y9, Y5, Y5 \
	VPADDD     Y11, Y8, Y11 \
	VPADDD     Y11, Y5, Y5

// func dotQ6KAVX2(w, a *byte, nb int) float32
TEXT ·dotQ6KAVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   nb+16(FP), CX
	VXORPS Y0, Y0, Y0
	BCAST32($0x0f0f0f0f, X15, Y15)

q6kloop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	PREFETCHT0 4288(SI)
	VMOVSS       (DI), X2
	HALF2F(208(SI), X3)
	VMULSS       X3, X2, X2
	VBROADCASTSS X2, Y2
	VMOVDQU      192(SI), X3
	VPMOVSXBW    X3, Y4
	VPMADDWD     260(DI), Y4, Y4
	VPSLLD       $5, Y4, Y4 // 32·Σ scale·bsum: the offset of q-32, taken off at the end
	VPXOR        Y5, Y5, Y5
	Q6KHALF(0, 32, 128, 4, 36, 68, 100, 0, 16, 32, 48)
	Q6KHALF(64, 96, 160, 132, 164, 196, 228, 64, 80, 96, 112)
	VPSUBD       Y4, Y5, Y5
	VCVTDQ2PS    Y5, Y5
	VFMADD231PS  Y5, Y2, Y0
	ADDQ         $210, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          q6kloop
	HSUM8(X1)
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET
