//go:build amd64

#include "textflag.h"

// The clamps of expApprox and the exponent bias, 8 lanes each.
DATA ·expBounds+0(SB)/8, $0xc2ae0000c2ae0000
DATA ·expBounds+8(SB)/8, $0xc2ae0000c2ae0000
DATA ·expBounds+16(SB)/8, $0xc2ae0000c2ae0000
DATA ·expBounds+24(SB)/8, $0xc2ae0000c2ae0000
DATA ·expBounds+32(SB)/8, $0x42b0000042b00000
DATA ·expBounds+40(SB)/8, $0x42b0000042b00000
DATA ·expBounds+48(SB)/8, $0x42b0000042b00000
DATA ·expBounds+56(SB)/8, $0x42b0000042b00000
DATA ·expBounds+64(SB)/8, $0x0000007f0000007f
DATA ·expBounds+72(SB)/8, $0x0000007f0000007f
DATA ·expBounds+80(SB)/8, $0x0000007f0000007f
DATA ·expBounds+88(SB)/8, $0x0000007f0000007f
GLOBL ·expBounds(SB), RODATA|NOPTR, $96

// BCASTF sets y to the float32 with bits c in every lane.
#define BCASTF(c, y) \
	MOVL         c, AX \
	VMOVD        AX, X15 \
	VPBROADCASTD X15, y

// swigluAVX2(dst, gate, up *float32, n int) sets dst[i] to
// gate[i]/(1+e^-gate[i])·up[i] for n a multiple of 8, e^x computed as
// expApprox (silu.go) computes it, eight lanes at a time.
TEXT ·swigluAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	BCASTF($0x3fb8aa3b, Y5)  // log2 e
	BCASTF($0x3f318000, Y6)  // ln2, high part
	BCASTF($0xb95e8083, Y7)  // ln2, low part
	BCASTF($0x39500d01, Y8)  // 1/7!
	BCASTF($0x3ab60b61, Y9)  // 1/6!
	BCASTF($0x3c088889, Y10) // 1/5!
	BCASTF($0x3d2aaaab, Y11) // 1/4!
	BCASTF($0x3e2aaaab, Y12) // 1/3!
	BCASTF($0x3f000000, Y13) // 1/2
	BCASTF($0x3f800000, Y14) // 1
	VXORPS Y15, Y15, Y15

loop:
	VMOVUPS      (SI), Y0                 // g
	VSUBPS       Y0, Y15, Y1              // x = -g
	VMAXPS       ·expBounds+0(SB), Y1, Y1
	VMINPS       ·expBounds+32(SB), Y1, Y1
	VMULPS       Y5, Y1, Y2
	VROUNDPS     $0, Y2, Y2               // n = round(x·log2 e), ties to even
	VFNMADD231PS Y6, Y2, Y1               // r = x - n·ln2 high
	VFNMADD231PS Y7, Y2, Y1               // r -= n·ln2 low
	VMOVAPS      Y8, Y3                   // p = 1/7!
	VFMADD213PS  Y9, Y1, Y3               // p = p·r + 1/6!
	VFMADD213PS  Y10, Y1, Y3
	VFMADD213PS  Y11, Y1, Y3
	VFMADD213PS  Y12, Y1, Y3
	VFMADD213PS  Y13, Y1, Y3
	VFMADD213PS  Y14, Y1, Y3
	VFMADD213PS  Y14, Y1, Y3              // p ≈ e^r
	VCVTPS2DQ    Y2, Y2
	VPADDD       ·expBounds+64(SB), Y2, Y2
	VPSLLD       $23, Y2, Y2              // 2^n
	VMULPS       Y2, Y3, Y3               // e^-g
	VADDPS       Y14, Y3, Y3              // 1 + e^-g
	VDIVPS       Y3, Y0, Y0               // g/(1+e^-g)
	VMULPS       (DX), Y0, Y0
	VMOVUPS      Y0, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $32, DI
	SUBQ         $8, CX
	JNZ          loop
	VZEROUPPER
	RET
