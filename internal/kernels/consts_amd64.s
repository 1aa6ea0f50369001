//go:build amd64

#include "textflag.h"

// Constant tables of the amd64 kernels.

// bitshuf spreads byte k of a broadcast 32-bit word over bytes 8k..8k+7;
// bitmask then sets every bit but bit (j mod 8) of byte j.
DATA ·bitshuf+0(SB)/8, $0x0000000000000000
DATA ·bitshuf+8(SB)/8, $0x0101010101010101
DATA ·bitshuf+16(SB)/8, $0x0202020202020202
DATA ·bitshuf+24(SB)/8, $0x0303030303030303
GLOBL ·bitshuf(SB), RODATA|NOPTR, $32

DATA ·bitmask+0(SB)/8, $0x7fbfdfeff7fbfdfe
DATA ·bitmask+8(SB)/8, $0x7fbfdfeff7fbfdfe
DATA ·bitmask+16(SB)/8, $0x7fbfdfeff7fbfdfe
DATA ·bitmask+24(SB)/8, $0x7fbfdfeff7fbfdfe
GLOBL ·bitmask(SB), RODATA|NOPTR, $32

// k4shuf+32i broadcasts int16 lane i (ggml's get_scale_shuffle_k4).
DATA ·k4shuf+0(SB)/8, $0x0100010001000100
DATA ·k4shuf+8(SB)/8, $0x0100010001000100
DATA ·k4shuf+16(SB)/8, $0x0100010001000100
DATA ·k4shuf+24(SB)/8, $0x0100010001000100
DATA ·k4shuf+32(SB)/8, $0x0302030203020302
DATA ·k4shuf+40(SB)/8, $0x0302030203020302
DATA ·k4shuf+48(SB)/8, $0x0302030203020302
DATA ·k4shuf+56(SB)/8, $0x0302030203020302
DATA ·k4shuf+64(SB)/8, $0x0504050405040504
DATA ·k4shuf+72(SB)/8, $0x0504050405040504
DATA ·k4shuf+80(SB)/8, $0x0504050405040504
DATA ·k4shuf+88(SB)/8, $0x0504050405040504
DATA ·k4shuf+96(SB)/8, $0x0706070607060706
DATA ·k4shuf+104(SB)/8, $0x0706070607060706
DATA ·k4shuf+112(SB)/8, $0x0706070607060706
DATA ·k4shuf+120(SB)/8, $0x0706070607060706
DATA ·k4shuf+128(SB)/8, $0x0908090809080908
DATA ·k4shuf+136(SB)/8, $0x0908090809080908
DATA ·k4shuf+144(SB)/8, $0x0908090809080908
DATA ·k4shuf+152(SB)/8, $0x0908090809080908
DATA ·k4shuf+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA ·k4shuf+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA ·k4shuf+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA ·k4shuf+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA ·k4shuf+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA ·k4shuf+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA ·k4shuf+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA ·k4shuf+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA ·k4shuf+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA ·k4shuf+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA ·k4shuf+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA ·k4shuf+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL ·k4shuf(SB), RODATA|NOPTR, $256

// q6shuf+16i picks int8 scale 2i for 8 bytes, then scale 2i+1 (ggml's
// get_scale_shuffle).
DATA ·q6shuf+0(SB)/8, $0x0000000000000000
DATA ·q6shuf+8(SB)/8, $0x0101010101010101
DATA ·q6shuf+16(SB)/8, $0x0202020202020202
DATA ·q6shuf+24(SB)/8, $0x0303030303030303
DATA ·q6shuf+32(SB)/8, $0x0404040404040404
DATA ·q6shuf+40(SB)/8, $0x0505050505050505
DATA ·q6shuf+48(SB)/8, $0x0606060606060606
DATA ·q6shuf+56(SB)/8, $0x0707070707070707
DATA ·q6shuf+64(SB)/8, $0x0808080808080808
DATA ·q6shuf+72(SB)/8, $0x0909090909090909
DATA ·q6shuf+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA ·q6shuf+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA ·q6shuf+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA ·q6shuf+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA ·q6shuf+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA ·q6shuf+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL ·q6shuf(SB), RODATA|NOPTR, $128

// Byte masks of the Q6_K high bit pairs.
DATA ·m3+0(SB)/8, $0x0303030303030303
DATA ·m3+8(SB)/8, $0x0303030303030303
DATA ·m3+16(SB)/8, $0x0303030303030303
DATA ·m3+24(SB)/8, $0x0303030303030303
GLOBL ·m3(SB), RODATA|NOPTR, $32

DATA ·m12+0(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA ·m12+8(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA ·m12+16(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA ·m12+24(SB)/8, $0x0c0c0c0c0c0c0c0c
GLOBL ·m12(SB), RODATA|NOPTR, $32

DATA ·m48+0(SB)/8, $0x3030303030303030
DATA ·m48+8(SB)/8, $0x3030303030303030
DATA ·m48+16(SB)/8, $0x3030303030303030
DATA ·m48+24(SB)/8, $0x3030303030303030
GLOBL ·m48(SB), RODATA|NOPTR, $32

DATA ·m192+0(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA ·m192+8(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA ·m192+16(SB)/8, $0xc0c0c0c0c0c0c0c0
DATA ·m192+24(SB)/8, $0xc0c0c0c0c0c0c0c0
GLOBL ·m192(SB), RODATA|NOPTR, $32

// q8perm puts the dwords of two packs back in element order.
DATA ·q8perm+0(SB)/4, $0
DATA ·q8perm+4(SB)/4, $4
DATA ·q8perm+8(SB)/4, $1
DATA ·q8perm+12(SB)/4, $5
DATA ·q8perm+16(SB)/4, $2
DATA ·q8perm+20(SB)/4, $6
DATA ·q8perm+24(SB)/4, $3
DATA ·q8perm+28(SB)/4, $7
GLOBL ·q8perm(SB), RODATA|NOPTR, $32
