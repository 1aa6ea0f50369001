//go:build amd64

#include "textflag.h"
#include "dot_amd64.h"

// The activation quantizers of ggml-cpu's arch/x86/quants.c (AVX2 branch),
// instruction for instruction: max |x| of the 32 floats, d = max/127 stored
// as a half, x·(127/max) rounded half to even, packed with saturation.

// Q8ACT quantizes the 32 floats at (SI): it leaves d in X5, the rounded
// quants as int32 in Y0..Y3 (in element order 0-7, 8-15, 16-23, 24-31).
// Y15 holds 0x7fffffff (|x|), X14 127.0.
#define Q8ACT \
	VMOVUPS      (SI), Y0 \
	VMOVUPS      32(SI), Y1 \
	VMOVUPS      64(SI), Y2 \
	VMOVUPS      96(SI), Y3 \
	VANDPS       Y15, Y0, Y4 \
	VANDPS       Y15, Y1, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VANDPS       Y15, Y2, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VANDPS       Y15, Y3, Y5 \
	VMAXPS       Y5, Y4, Y4 \
	VEXTRACTF128 $1, Y4, X5 \
	VMAXPS       X5, X4, X4 \
	VMOVHLPS     X4, X4, X5 \
	VMAXPS       X5, X4, X4 \
	VMOVSHDUP    X4, X5 \
	VMAXSS       X5, X4, X4 \
	VDIVSS       X14, X4, X5 \
	VXORPS       X6, X6, X6 \
	VUCOMISS     X6, X4 \
	JEQ          2(PC) \
	VDIVSS       X4, X14, X6 \
	VBROADCASTSS X6, Y6 \
	VMULPS       Y6, Y0, Y0 \
	VMULPS       Y6, Y1, Y1 \
	VMULPS       Y6, Y2, Y2 \
	VMULPS       Y6, Y3, Y3 \
	VROUNDPS     $0, Y0, Y0 \
	VROUNDPS     $0, Y1, Y1 \
	VROUNDPS     $0, Y2, Y2 \
	VROUNDPS     $0, Y3, Y3 \
	VCVTPS2DQ    Y0, Y0 \
	VCVTPS2DQ    Y1, Y1 \
	VCVTPS2DQ    Y2, Y2 \
	VCVTPS2DQ    Y3, Y3

// Q8PACK packs Y0..Y3 to 32 int8 in element order and stores them at mem.
// Y13 holds the lane order (0, 4, 1, 5, 2, 6, 3, 7).
#define Q8PACK(mem) \
	VPACKSSDW Y1, Y0, Y0 \
	VPACKSSDW Y3, Y2, Y2 \
	VPACKSSWB Y2, Y0, Y0 \
	VPERMD    Y0, Y13, Y0 \
	VMOVDQU   Y0, mem

#define Q8CONSTS \
	BCAST32($0x7fffffff, X15, Y15) \
	MOVL    $0x42fe0000, AX \
	VMOVD   AX, X14 \
	VMOVDQU ·q8perm(SB), Y13

// func quantQ8_0ActAVX2(x *float32, y *byte, nb int)
TEXT ·quantQ8_0ActAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ nb+16(FP), CX
	Q8CONSTS

q80actloop:
	Q8ACT
	VCVTPS2PH $0, X5, X5
	VPEXTRW   $0, X5, AX
	MOVW      AX, (DI)
	Q8PACK(2(DI))
	ADDQ      $128, SI
	ADDQ      $34, DI
	DECQ      CX
	JNZ       q80actloop
	VZEROUPPER
	RET

// func quantQ8_1ActAVX2(x *float32, y *byte, nb int)
// As quantQ8_0ActAVX2, plus s = d·Σq (ggml's hsum_i32_8 of the int32 quants).
TEXT ·quantQ8_1ActAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ nb+16(FP), CX
	Q8CONSTS

q81actloop:
	Q8ACT
	VCVTPS2PH    $0, X5, X7
	VPEXTRW      $0, X7, AX
	MOVW         AX, (DI)
	VPADDD       Y1, Y0, Y8
	VPADDD       Y3, Y2, Y9
	VPADDD       Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0x4e, X8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0xb1, X8, X9
	VPADDD       X9, X8, X8
	VMOVD        X8, AX
	VCVTSI2SSL   AX, X9, X9
	VMULSS       X9, X5, X9
	VCVTPS2PH    $0, X9, X9
	VPEXTRW      $0, X9, AX
	MOVW         AX, 2(DI)
	Q8PACK(4(DI))
	ADDQ         $128, SI
	ADDQ         $36, DI
	DECQ         CX
	JNZ          q81actloop
	VZEROUPPER
	RET

// Q8KROUND scales the 32 floats at off(SI) by Y6, rounds them half to even
// (ggml's nearest_int), packs them to int8 at qoff(DI), and leaves in m the
// int32 sums of their quarters: the first group of 16 in the low lane, the
// second in the high lane (Y12: 0x01 bytes, Y11: int16 ones).
#define Q8KROUND(off, qoff, m) \
	VMULPS     off(SI), Y6, Y0 \
	VMULPS     off+32(SI), Y6, Y1 \
	VMULPS     off+64(SI), Y6, Y2 \
	VMULPS     off+96(SI), Y6, Y3 \
	VROUNDPS   $0, Y0, Y0 \
	VROUNDPS   $0, Y1, Y1 \
	VROUNDPS   $0, Y2, Y2 \
	VROUNDPS   $0, Y3, Y3 \
	VCVTPS2DQ  Y0, Y0 \
	VCVTPS2DQ  Y1, Y1 \
	VCVTPS2DQ  Y2, Y2 \
	VCVTPS2DQ  Y3, Y3 \
	Q8PACK(qoff(DI)) \
	VPMADDUBSW Y0, Y12, Y0 \
	VPMADDWD   Y11, Y0, m

// func quantQ8KAVX2(x *float32, y *byte, nb int)
// quantize_row_q8_K_ref: d = max/-127 where max is the first element of
// largest magnitude, q = nearest(x·(-127/max)) (capped at 127 by the packs),
// and the sums of each 16 quants.
TEXT ·quantQ8KAVX2(SB), NOSPLIT, $0-24
	MOVQ    x+0(FP), SI
	MOVQ    y+8(FP), DI
	MOVQ    nb+16(FP), CX
	BCAST32($0x7fffffff, X15, Y15)
	VMOVDQU ·q8perm(SB), Y13
	BCAST32($0x01010101, X12, Y12)
	BCAST32($0x00010001, X11, Y11)

q8kloop:
	// amax over the 256 elements.
	VANDPS       (SI), Y15, Y4
	MOVQ         $8, AX

q8kmax:
	VANDPS       (SI)(AX*4), Y15, Y5
	VMAXPS       Y5, Y4, Y4
	ADDQ         $8, AX
	CMPQ         AX, $256
	JLT          q8kmax
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4
	VXORPS       X5, X5, X5
	VUCOMISS     X5, X4
	JEQ          q8kzero

	// The first element whose magnitude is amax.
	VBROADCASTSS X4, Y4
	XORQ         AX, AX

q8kfind:
	CMPQ      AX, $256
	JGE       q8kzero // only with NaNs about
	VANDPS    (SI)(AX*4), Y15, Y5
	VCMPPS    $0, Y4, Y5, Y5
	VMOVMSKPS Y5, BX
	TESTL     BX, BX
	JNZ       q8kfound
	ADDQ      $8, AX
	JMP       q8kfind

q8kfound:
	BSFL         BX, BX
	ADDQ         BX, AX
	MOVL         $0xc2fe0000, BX // -127.0
	VMOVD        BX, X6
	VDIVSS       (SI)(AX*4), X6, X6 // iscale = -127/max
	MOVL         $0x3f800000, BX // 1.0
	VMOVD        BX, X7
	VDIVSS       X6, X7, X7
	VMOVSS       X7, (DI) // d = 1/iscale
	VBROADCASTSS X6, Y6
	Q8KROUND(0, 4, Y7)
	Q8KROUND(128, 36, Y8)
	Q8KROUND(256, 68, Y9)
	Q8KROUND(384, 100, Y10)
	VPHADDD      Y8, Y7, Y7
	VPHADDD      Y10, Y9, Y9
	VPHADDD      Y9, Y7, Y7 // groups 0 2 4 6 | 1 3 5 7
	Q8KROUND(512, 132, Y8)
	Q8KROUND(640, 164, Y9)
	Q8KROUND(768, 196, Y10)
	Q8KROUND(896, 228, Y14)
	VPHADDD      Y9, Y8, Y8
	VPHADDD      Y14, Y10, Y10
	VPHADDD      Y10, Y8, Y8 // groups 8 10 12 14 | 9 11 13 15
	VPACKSSDW    Y8, Y7, Y7 // 0 2 4 6 8 10 12 14 | 1 3 5 7 9 11 13 15
	VPERMQ       $0x4e, Y7, Y8 // the two lanes swapped
	VPUNPCKLWD   Y8, Y7, Y9 // 0 1 2 3 4 5 6 7 | ...
	VPUNPCKHWD   Y8, Y7, Y10 // 8 9 10 11 12 13 14 15 | ...
	VPERM2I128   $0x20, Y10, Y9, Y7
	VMOVDQU      Y7, 260(DI)
	JMP          q8knext

q8kzero:
	VXORPS  Y0, Y0, Y0
	MOVL    $0, (DI)
	MOVQ    $4, AX

q8kclear:
	VMOVDQU Y0, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, $260
	JLT     q8kclear
	VMOVDQU Y0, 260(DI)

q8knext:
	ADDQ $1024, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q8kloop
	VZEROUPPER
	RET

// func f32ToF16AVX2(x *float32, y *byte, n int)
// n is a positive multiple of 8. VCVTPS2PH rounds to nearest even, as
// gguf.Float32ToF16 (and ggml's F16C path) do, subnormals and NaN included.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX

f16cvtloop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VMOVDQU   X0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	JNZ       f16cvtloop
	VZEROUPPER
	RET

// func madF16AVX2(y, x *uint16, v float32, n int)
// y[i] = half(y[i] + x[i]·v), 8 at a time; n is a positive multiple of 8.
TEXT ·madF16AVX2(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS v+16(FP), Y2
	MOVQ         n+24(FP), CX

madf16loop:
	VCVTPH2PS   (SI), Y0
	VCVTPH2PS   (DI), Y1
	VFMADD231PS Y2, Y0, Y1
	VCVTPS2PH   $0, Y1, (DI)
	ADDQ        $16, SI
	ADDQ        $16, DI
	SUBQ        $8, CX
	JNZ         madf16loop
	VZEROUPPER
	RET

// func scaleF16AVX2(y *uint16, v float32, n int)
// y[i] = half(y[i]·v), 8 at a time; n is a positive multiple of 8.
TEXT ·scaleF16AVX2(SB), NOSPLIT, $0-24
	MOVQ         y+0(FP), DI
	VBROADCASTSS v+8(FP), Y2
	MOVQ         n+16(FP), CX

scalef16loop:
	VCVTPH2PS (DI), Y1
	VMULPS    Y2, Y1, Y1
	VCVTPS2PH $0, Y1, (DI)
	ADDQ      $16, DI
	SUBQ      $8, CX
	JNZ       scalef16loop
	VZEROUPPER
	RET
