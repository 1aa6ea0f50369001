// Macros shared by the amd64 dot product kernels.

// HSUM8 leaves in lane 0 of X0 the sum of the 8 floats of Y0, as ggml's
// hsum_float_8: high half + low half, lanes (0+2, 1+3), then those two.
#define HSUM8(tmp) \
	VEXTRACTF128 $1, Y0, tmp \
	VADDPS       X0, tmp, X0 \
	VMOVHLPS     X0, X0, tmp \
	VADDPS       tmp, X0, X0 \
	VMOVSHDUP    X0, tmp \
	VADDSS       tmp, X0, X0

// REDUCE4 sums the accumulators Y0..Y3 into lane 0 of X0 as ggml's
// GGML_F32x8_REDUCE: (0+2)+(1+3), high half + low half, two horizontal adds.
#define REDUCE4 \
	VADDPS       Y2, Y0, Y0 \
	VADDPS       Y3, Y1, Y1 \
	VADDPS       Y1, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VHADDPS      X0, X0, X0 \
	VHADDPS      X0, X0, X0

// HALF2F loads the half at mem and leaves it as a float32 in lane 0 of x.
#define HALF2F(mem, x) \
	MOVWLZX   mem, AX \
	VMOVD     AX, x \
	VCVTPH2PS x, x

// BCAST32 sets every byte of y to the byte pattern of the 32-bit constant c.
#define BCAST32(c, x, y) \
	MOVL         c, AX \
	VMOVD        AX, x \
	VPBROADCASTD x, y

// BLOCKSCALE sets Y1 to fp16(w.d)·fp16(a.d) in every lane (the halves at
// offset 0 of both blocks).
#define BLOCKSCALE \
	HALF2F((SI), X1) \
	HALF2F((DI), X2) \
	VMULSS       X2, X1, X1 \
	VBROADCASTSS X1, Y1

// TBLOCKSCALE is BLOCKSCALE through the half-to-float table at R11 (two
// loads instead of two conversions of three instructions each): the
// single-row kernels spend a third of their instructions on scales.
#define TBLOCKSCALE \
	MOVWLZX      (SI), AX \
	MOVWLZX      (DI), BX \
	VMOVSS       (R11)(AX*4), X1 \
	VMULSS       (R11)(BX*4), X1, X1 \
	VBROADCASTSS X1, Y1

// TMINSCALE adds fp16(w.m)·fp16(a.s) to lane 0 of X5 in one FMA, through
// the table at R11 (Q4_1 and Q5_1; llama.cpp's compilers fuse this).
#define TMINSCALE \
	MOVWLZX     2(SI), AX \
	MOVWLZX     2(DI), BX \
	VMOVSS      (R11)(AX*4), X2 \
	VFMADD231SS (R11)(BX*4), X2, X5

// MULSUMI8 turns the signed bytes of Y2 (weights) and Y3 (activations)
// into 8 int32 sums of 4 products, then floats, in Y3, as ggml's
// mul_sum_i8_pairs_float: |w| times a with w's sign. Y15 holds int16 ones.
#define MULSUMI8 \
	VPSIGNB    Y2, Y2, Y4 \
	VPSIGNB    Y2, Y3, Y3 \
	VPMADDUBSW Y3, Y4, Y3 \
	VPMADDWD   Y15, Y3, Y3 \
	VCVTDQ2PS  Y3, Y3

// NIBBLES sets the 32 bytes of Y2 to the 4-bit quants at mem (16 bytes):
// low nibbles first, then high, as ggml's bytes_from_nibbles_32. Y14 holds
// 0x0f bytes.
#define NIBBLES(mem) \
	VMOVDQU     mem, X2 \
	VPSRLW      $4, X2, X3 \
	VINSERTI128 $1, X3, Y2, Y2 \
	VPAND       Y14, Y2, Y2

// HIGHBITS sets byte j of Y3 to 0xff where bit j of the 32-bit word at mem
// is set, 0 elsewhere (ggml's bytes_from_bits_32). Y12 holds all ones.
#define HIGHBITS(mem) \
	VPBROADCASTD mem, Y3 \
	VPSHUFB      ·bitshuf(SB), Y3, Y3 \
	VPOR         ·bitmask(SB), Y3, Y3 \
	VPCMPEQB     Y12, Y3, Y3

// KSCALES decodes the 12 packed scale bytes of a Q4_K/Q5_K block at 4(SI)
// as ggml's utmp shuffle, leaving the 8 scales then the 8 minimums as
// int16 in Y6.
#define KSCALES \
	MOVL         4(SI), AX \
	MOVL         8(SI), BX \
	MOVL         12(SI), DX \
	MOVL         DX, R12 \
	SHRL         $4, R12 \
	ANDL         $0x0f0f0f0f, R12 \
	MOVL         BX, R13 \
	SHRL         $6, R13 \
	ANDL         $0x03030303, R13 \
	SHLL         $4, R13 \
	ORL          R13, R12 \
	MOVL         BX, R10 \
	ANDL         $0x3f3f3f3f, R10 \
	MOVL         DX, R11 \
	ANDL         $0x0f0f0f0f, R11 \
	MOVL         AX, R13 \
	SHRL         $6, R13 \
	ANDL         $0x03030303, R13 \
	SHLL         $4, R13 \
	ORL          R13, R11 \
	ANDL         $0x3f3f3f3f, AX \
	SHLQ         $32, R11 \
	ORQ          AX, R11 \
	SHLQ         $32, R12 \
	ORQ          R10, R12 \
	VMOVQ        R11, X6 \
	VPINSRQ      $1, R12, X6, X6 \
	VPMOVZXBW    X6, Y6

// KDSCALES sets Y4 to y.d·fp16(x.d) in every lane and X5 to y.d·fp16(x.dmin)
// in every lane (positive: the callers subtract with FNMADD, which rounds
// as ggml's FMA with dmin = -y.d·fp16(x.dmin)).
#define KDSCALES \
	VBROADCASTSS (DI), X2 \
	VMOVD        (SI), X3 \
	VCVTPH2PS    X3, X3 \
	VMULPS       X3, X2, X3 \
	VBROADCASTSS X3, Y4 \
	VMOVSHDUP    X3, X5 \
	VBROADCASTSS X5, X5

// KMINS sets X8 to the 4 int32 sums of minimum·(sum of 32 activations),
// pairs of sub-blocks, as ggml's madd(mins, hadd(bsums lo, bsums hi)).
#define KMINS \
	VMOVDQU      260(DI), Y7 \
	VEXTRACTI128 $1, Y7, X8 \
	VPHADDW      X8, X7, X7 \
	VEXTRACTI128 $1, Y6, X8 \
	VPMADDWD     X7, X8, X8


// HSUMY is HSUM8 for any accumulator: lane 0 of x (the low half of y)
// gets the sum of the 8 floats of y.
#define HSUMY(y, x, tmp) \
	VEXTRACTF128 $1, y, tmp \
	VADDPS       x, tmp, x \
	VMOVHLPS     x, x, tmp \
	VADDPS       tmp, x, x \
	VMOVSHDUP    x, tmp \
	VADDSS       tmp, x, x

// HSUM4 leaves in lane 0 of x the sum of its 4 floats, as ggml reduces the
// k-quant minimum accumulator: lanes (0+2, 1+3), then those two.
#define HSUM4(x, tmp) \
	VMOVHLPS  x, x, tmp \
	VADDPS    tmp, x, x \
	VMOVSHDUP x, tmp \
	VADDSS    tmp, x, x
