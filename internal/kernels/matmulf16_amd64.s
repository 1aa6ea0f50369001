//go:build amd64

#include "textflag.h"
#include "dot_amd64.h"

// func dotF16F32x3AVX2(w *byte, a *float32, stride, n int, out *[3]float32)
// Three dotF16AVX2 products of one F16 weight row with float32 activation
// rows at a, a+stride, a+2·stride (bytes): each weight vector is widened
// once for the three. n is a positive multiple of 32.
TEXT ·dotF16F32x3AVX2(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), SI
	MOVQ   a+8(FP), DI
	MOVQ   stride+16(FP), R8
	MOVQ   n+24(FP), CX
	MOVQ   out+32(FP), DX
	LEAQ   (DI)(R8*1), R9
	LEAQ   (R9)(R8*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

f16x3loop:
	VCVTPH2PS   (SI), Y12
	VFMADD231PS (DI), Y12, Y0
	VFMADD231PS (R9), Y12, Y4
	VFMADD231PS (R10), Y12, Y8
	VCVTPH2PS   16(SI), Y13
	VFMADD231PS 32(DI), Y13, Y1
	VFMADD231PS 32(R9), Y13, Y5
	VFMADD231PS 32(R10), Y13, Y9
	VCVTPH2PS   32(SI), Y14
	VFMADD231PS 64(DI), Y14, Y2
	VFMADD231PS 64(R9), Y14, Y6
	VFMADD231PS 64(R10), Y14, Y10
	VCVTPH2PS   48(SI), Y15
	VFMADD231PS 96(DI), Y15, Y3
	VFMADD231PS 96(R9), Y15, Y7
	VFMADD231PS 96(R10), Y15, Y11
	ADDQ        $64, SI
	ADDQ        $128, DI
	ADDQ        $128, R9
	ADDQ        $128, R10
	SUBQ        $32, CX
	JNZ         f16x3loop
	REDUCE4
	MOVSS       X0, 0(DX)
	VMOVAPS     Y4, Y0
	VMOVAPS     Y5, Y1
	VMOVAPS     Y6, Y2
	VMOVAPS     Y7, Y3
	REDUCE4
	MOVSS       X0, 4(DX)
	VMOVAPS     Y8, Y0
	VMOVAPS     Y9, Y1
	VMOVAPS     Y10, Y2
	VMOVAPS     Y11, Y3
	REDUCE4
	MOVSS       X0, 8(DX)
	VZEROUPPER
	RET

// func roundF16AVX2(dst, x *float32, n int)
// dst[i] = x[i] rounded to the nearest half (ties to even), 8 at a time; n
// is a positive multiple of 8.
TEXT ·roundF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX

roundf16loop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VCVTPH2PS X0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       roundf16loop
	VZEROUPPER
	RET
