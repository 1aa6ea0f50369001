package gguf

import (
	"strings"
	"testing"
)

func TestTypeTraits(t *testing.T) {
	// Block sizes and bytes per block as ggml's type_traits give them
	// (ggml/src/ggml.c, block structs in ggml-common.h).
	tests := []struct {
		typ        Type
		num        uint32
		name       string
		block, byt uint64
	}{
		{TypeF32, 0, "F32", 1, 4},
		{TypeF16, 1, "F16", 1, 2},
		{TypeQ4_0, 2, "Q4_0", 32, 18},
		{TypeQ4_1, 3, "Q4_1", 32, 20},
		{TypeQ5_0, 6, "Q5_0", 32, 22},
		{TypeQ5_1, 7, "Q5_1", 32, 24},
		{TypeQ8_0, 8, "Q8_0", 32, 34},
		{TypeQ8_1, 9, "Q8_1", 32, 36},
		{TypeQ2_K, 10, "Q2_K", 256, 84},
		{TypeQ3_K, 11, "Q3_K", 256, 110},
		{TypeQ4_K, 12, "Q4_K", 256, 144},
		{TypeQ5_K, 13, "Q5_K", 256, 176},
		{TypeQ6_K, 14, "Q6_K", 256, 210},
		{TypeQ8_K, 15, "Q8_K", 256, 292},
		{TypeIQ2_XXS, 16, "IQ2_XXS", 256, 66},
		{TypeIQ2_XS, 17, "IQ2_XS", 256, 74},
		{TypeIQ3_XXS, 18, "IQ3_XXS", 256, 98},
		{TypeIQ1_S, 19, "IQ1_S", 256, 50},
		{TypeIQ4_NL, 20, "IQ4_NL", 32, 18},
		{TypeIQ3_S, 21, "IQ3_S", 256, 110},
		{TypeIQ2_S, 22, "IQ2_S", 256, 82},
		{TypeIQ4_XS, 23, "IQ4_XS", 256, 136},
		{TypeI8, 24, "I8", 1, 1},
		{TypeI16, 25, "I16", 1, 2},
		{TypeI32, 26, "I32", 1, 4},
		{TypeI64, 27, "I64", 1, 8},
		{TypeF64, 28, "F64", 1, 8},
		{TypeIQ1_M, 29, "IQ1_M", 256, 56},
		{TypeBF16, 30, "BF16", 1, 2},
		{TypeTQ1_0, 34, "TQ1_0", 256, 54},
		{TypeTQ2_0, 35, "TQ2_0", 256, 66},
		{TypeMXFP4, 39, "MXFP4", 32, 17},
		{TypeNVFP4, 40, "NVFP4", 64, 36},
		{TypeQ1_0, 41, "Q1_0", 128, 18},
	}
	known := 0
	for n := range uint32(64) {
		if Type(n).Known() {
			known++
		}
	}
	if known != len(tests) {
		t.Errorf("%d known types, want %d", known, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint32(tt.typ) != tt.num {
				t.Errorf("number = %d, want %d", uint32(tt.typ), tt.num)
			}
			if got := tt.typ.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.typ.BlockSize(); got != tt.block {
				t.Errorf("BlockSize() = %d, want %d", got, tt.block)
			}
			if got := tt.typ.BlockBytes(); got != tt.byt {
				t.Errorf("BlockBytes() = %d, want %d", got, tt.byt)
			}
		})
	}
}

func TestTypeUnknown(t *testing.T) {
	tests := []struct {
		typ     Type
		str     string
		errWant string
	}{
		{4, "Q4_2(retired)", "type 4 (Q4_2) was removed"},
		{33, "Q4_0_8_8(retired)", "type 33 (Q4_0_8_8) was removed"},
		{42, "type(42)", "unknown tensor type 42"},
		{1 << 31, "type(2147483648)", "unknown tensor type 2147483648"},
	}
	for _, tt := range tests {
		if tt.typ.Known() || tt.typ.BlockSize() != 0 || tt.typ.BlockBytes() != 0 {
			t.Errorf("type %d: Known/BlockSize/BlockBytes = %v/%d/%d, want false/0/0", uint32(tt.typ), tt.typ.Known(), tt.typ.BlockSize(), tt.typ.BlockBytes())
		}
		if got := tt.typ.String(); got != tt.str {
			t.Errorf("type %d: String() = %q, want %q", uint32(tt.typ), got, tt.str)
		}
		_, err := TensorSize(tt.typ, []uint64{32})
		if err == nil || !strings.Contains(err.Error(), tt.errWant) {
			t.Errorf("type %d: TensorSize error = %v, want it to contain %q", uint32(tt.typ), err, tt.errWant)
		}
	}
}

func TestTensorSize(t *testing.T) {
	tests := []struct {
		name    string
		typ     Type
		dims    []uint64
		want    uint64
		wantErr string
	}{
		{"f32 vector", TypeF32, []uint64{7}, 28, ""},
		{"f16 matrix", TypeF16, []uint64{3, 5}, 30, ""},
		{"q4_0 rows", TypeQ4_0, []uint64{64, 3}, 2 * 18 * 3, ""},
		{"q4_k 4d", TypeQ4_K, []uint64{512, 2, 3, 4}, 2 * 144 * 24, ""},
		{"zero dim", TypeQ8_0, []uint64{32, 0}, 0, ""},
		{"zero row", TypeQ8_0, []uint64{0, 9}, 0, ""},
		{"row not multiple of block", TypeQ8_0, []uint64{48}, 0, "row length 48 is not a multiple of the Q8_0 block size 32"},
		{"no dims", TypeF32, nil, 0, "0 dimensions"},
		{"five dims", TypeF32, []uint64{1, 1, 1, 1, 1}, 0, "5 dimensions"},
		{"bytes overflow", TypeF32, []uint64{1 << 40, 1 << 30}, 0, "overflows"},
		{"elements overflow", TypeQ4_0, []uint64{1 << 62, 2}, 0, "element count"},
		{"max single dim", TypeI8, []uint64{1<<63 - 1}, 1<<63 - 1, ""},
		{"dim beyond int64", TypeI8, []uint64{1 << 63}, 0, "beyond int64"},
		{"dim beyond int64 beside a zero", TypeI8, []uint64{0, 1 << 63}, 0, "beyond int64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TensorSize(tt.typ, tt.dims)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TensorSize = %d, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TensorSize = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
