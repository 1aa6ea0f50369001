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
