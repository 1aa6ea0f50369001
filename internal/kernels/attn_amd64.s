//go:build amd64

#include "textflag.h"

// vecMatAVX2(out, a, m *float32, na, stride, n int) sets out[j] = Σ_d a[d]·m[d·stride+j]
// (stride in bytes) for j < n, n a multiple of 8: 32 at a time, then 8, each an FMA per d in
// order from zero, the arithmetic of Axpy(a[d], row d, out) over a cleared out.
TEXT ·vecMatAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ na+24(FP), R8
	MOVQ stride+32(FP), R9
	MOVQ n+40(FP), CX

cols32:
	CMPQ CX, $32
	JLT  cols8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   DX, AX
	XORQ   BX, BX
	TESTQ  R8, R8
	JZ     store32

d32:
	VBROADCASTSS (SI)(BX*4), Y4
	VFMADD231PS  (AX), Y4, Y0
	VFMADD231PS  32(AX), Y4, Y1
	VFMADD231PS  64(AX), Y4, Y2
	VFMADD231PS  96(AX), Y4, Y3
	ADDQ         R9, AX
	INCQ         BX
	CMPQ         BX, R8
	JLT          d32

store32:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, DX
	SUBQ    $32, CX
	JMP     cols32

cols8:
	CMPQ CX, $8
	JLT  done
	VXORPS Y0, Y0, Y0
	MOVQ   DX, AX
	XORQ   BX, BX
	TESTQ  R8, R8
	JZ     store8

d8:
	VBROADCASTSS (SI)(BX*4), Y4
	VFMADD231PS  (AX), Y4, Y0
	ADDQ         R9, AX
	INCQ         BX
	CMPQ         BX, R8
	JLT          d8

store8:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JMP     cols8

done:
	VZEROUPPER
	RET
