package kernels

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// relRMSError returns the rms of got-want over the rms of want.
func relRMSError(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

// TestRoundTrip quantizes bell-shaped rows with the reference quantizers
// and checks the dequantized rows stay as close as each format allows.
func TestRoundTrip(t *testing.T) {
	bounds := map[gguf.Type]float64{
		gguf.TypeF32: 0, gguf.TypeF16: 3e-4, gguf.TypeBF16: 3e-3,
		gguf.TypeQ8_0: 0.006, gguf.TypeQ8_1: 0.006, gguf.TypeQ8_K: 0.008,
		gguf.TypeQ4_0: 0.11, gguf.TypeQ4_1: 0.09, gguf.TypeQ5_0: 0.055, gguf.TypeQ5_1: 0.045,
		gguf.TypeQ4_K: 0.09, gguf.TypeQ5_K: 0.045, gguf.TypeQ6_K: 0.025,
	}
	x := randomRows(5, 4, 1024, 0.02)
	for ty, bound := range bounds {
		t.Run(ty.String(), func(t *testing.T) {
			q := quantized(ty, x)
			if len(q) != RowBytes(ty, len(x)) {
				t.Fatalf("%d bytes, want %d", len(q), RowBytes(ty, len(x)))
			}
			got := make([]float32, len(x))
			Dequantize(ty, q, got)
			if e := relRMSError(got, x); e > bound {
				t.Errorf("relative rms error %.4g, want ≤ %g", e, bound)
			}
		})
	}
}

// TestActivationRoundTrip does the same for the activation quantizers.
func TestActivationRoundTrip(t *testing.T) {
	x := randomRows(6, 2, 1024, 4)
	for _, ty := range weightTypes {
		at := ActivationType(ty)
		a := activations(ty, x)
		got := make([]float32, len(x))
		Dequantize(at, a, got)
		bound := map[gguf.Type]float64{gguf.TypeF32: 0, gguf.TypeF16: 3e-4, gguf.TypeBF16: 3e-3}[at]
		if at.Quantized() {
			bound = 0.006
			if at == gguf.TypeQ8_K {
				bound = 0.008 // one scale per 256 rather than per 32
			}
		}
		if e := relRMSError(got, x); e > bound {
			t.Errorf("%v activations (%v): relative rms error %.4g, want ≤ %g", ty, at, e, bound)
		}
	}
}

// TestZeroBlocks checks that all-zero input quantizes to blocks that
// dequantize to zeros (no NaN from a zero scale).
func TestZeroBlocks(t *testing.T) {
	x := make([]float32, 512)
	for ty := range bytesPerType() {
		q := quantized(ty, x)
		got := make([]float32, len(x))
		Dequantize(ty, q, got)
		for i, v := range got {
			if v != 0 {
				t.Errorf("%v: element %d of zeros dequantizes to %v", ty, i, v)
				break
			}
		}
	}
}

// bytesPerType lists every type Quantize and Dequantize take.
func bytesPerType() map[gguf.Type]int {
	m := map[gguf.Type]int{}
	for _, ty := range append(weightTypes, gguf.TypeQ8_1, gguf.TypeQ8_K) {
		m[ty] = int(ty.BlockBytes())
	}
	return m
}

// TestBlockSizes checks this package's block sizes against the gguf table.
func TestBlockSizes(t *testing.T) {
	want := map[gguf.Type]int{
		gguf.TypeQ4_0: q4_0Bytes, gguf.TypeQ4_1: q4_1Bytes, gguf.TypeQ5_0: q5_0Bytes,
		gguf.TypeQ5_1: q5_1Bytes, gguf.TypeQ8_0: q8_0Bytes, gguf.TypeQ8_1: q8_1Bytes,
		gguf.TypeQ4_K: q4KBytes, gguf.TypeQ5_K: q5KBytes, gguf.TypeQ6_K: q6KBytes, gguf.TypeQ8_K: q8KBytes,
	}
	for ty, n := range want {
		if got := int(ty.BlockBytes()); got != n {
			t.Errorf("%v: gguf says %d bytes a block, kernels %d", ty, got, n)
		}
	}
}

// TestKnownBlocks builds blocks by hand from the layouts in ggml-common.h
// and checks the values Dequantize reads from them.
func TestKnownBlocks(t *testing.T) {
	half := func(f float32) []byte { return binary.LittleEndian.AppendUint16(nil, gguf.Float32ToF16(f)) }
	t.Run("Q8_0", func(t *testing.T) {
		b := half(0.5)
		for j := 0; j < 32; j++ {
			b = append(b, byte(int8(j*8-127)))
		}
		got := make([]float32, 32)
		Dequantize(gguf.TypeQ8_0, b, got)
		for j, v := range got {
			if want := float32(j*8-127) * 0.5; v != want {
				t.Errorf("element %d = %v, want %v", j, v, want)
			}
		}
	})
	t.Run("Q4_0", func(t *testing.T) {
		// Byte j: element j in the low nibble, element j+16 in the high one.
		b := half(2)
		for j := 0; j < 16; j++ {
			b = append(b, byte(j)|byte(15-j)<<4)
		}
		got := make([]float32, 32)
		Dequantize(gguf.TypeQ4_0, b, got)
		for j := 0; j < 16; j++ {
			if got[j] != float32(2*(j-8)) || got[j+16] != float32(2*(15-j-8)) {
				t.Errorf("elements %d, %d = %v, %v; want %v, %v", j, j+16, got[j], got[j+16], 2*(j-8), 2*(7-j))
			}
		}
	})
	t.Run("Q5_1", func(t *testing.T) {
		b := append(half(0.25), half(-3)...)
		const high uint32 = 0xa5a5a5a5 // fifth bits
		b = binary.LittleEndian.AppendUint32(b, high)
		for j := 0; j < 16; j++ {
			b = append(b, byte(j)|byte(j)<<4)
		}
		got := make([]float32, 32)
		Dequantize(gguf.TypeQ5_1, b, got)
		for e := 0; e < 32; e++ {
			q := e % 16
			if high>>e&1 == 1 {
				q += 16
			}
			if want := 0.25*float32(q) - 3; got[e] != want {
				t.Errorf("element %d = %v, want %v", e, got[e], want)
			}
		}
	})
	t.Run("Q4_K", func(t *testing.T) {
		// Sub-block j: scale j+1, minimum 2j+1; quant of element e is e mod 16.
		b := append(half(1), half(0.5)...)
		scales := make([]byte, 12)
		for j := 0; j < 8; j++ {
			putScaleMinK4(j, scales, uint8(j+1), uint8(2*j+1))
		}
		b = append(b, scales...)
		qs := make([]byte, 128)
		for e := 0; e < 256; e++ {
			chunk, r := e/64, e%64
			q := byte(e % 16)
			if r < 32 {
				qs[32*chunk+r] |= q
			} else {
				qs[32*chunk+r-32] |= q << 4
			}
		}
		b = append(b, qs...)
		got := make([]float32, 256)
		Dequantize(gguf.TypeQ4_K, b, got)
		for e, v := range got {
			j := e / 32
			if want := float32(j+1)*float32(e%16) - 0.5*float32(2*j+1); v != want {
				t.Fatalf("element %d = %v, want %v", e, v, want)
			}
		}
	})
	t.Run("Q6_K", func(t *testing.T) {
		// Group g of 16: scale g-8; quant of element e is e mod 64.
		b := make([]byte, q6KBytes)
		for e := 0; e < 256; e++ {
			q := byte(e % 64)
			h, r := e/128, e%128
			l := r % 32
			switch r / 32 {
			case 0:
				b[64*h+l] |= q & 0xf
			case 1:
				b[64*h+32+l] |= q & 0xf
			case 2:
				b[64*h+l] |= (q & 0xf) << 4
			case 3:
				b[64*h+32+l] |= (q & 0xf) << 4
			}
			b[128+32*h+l] |= (q >> 4) << (2 * uint(r/32))
		}
		for g := 0; g < 16; g++ {
			b[192+g] = byte(int8(g - 8))
		}
		copy(b[208:], half(0.125))
		got := make([]float32, 256)
		Dequantize(gguf.TypeQ6_K, b, got)
		for e, v := range got {
			if want := 0.125 * float32(e/16-8) * float32(e%64-32); v != want {
				t.Fatalf("element %d = %v, want %v", e, v, want)
			}
		}
	})
}

// TestScaleMinK4 round-trips every 6-bit scale and minimum through the
// packed Q4_K/Q5_K layout.
func TestScaleMinK4(t *testing.T) {
	for v := 0; v < 64; v++ {
		q := make([]byte, 12)
		for j := 0; j < 8; j++ {
			putScaleMinK4(j, q, uint8((v+j)%64), uint8((v+7*j)%64))
		}
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, q)
			if int(sc) != (v+j)%64 || int(m) != (v+7*j)%64 {
				t.Fatalf("v=%d sub-block %d: got %d,%d want %d,%d", v, j, sc, m, (v+j)%64, (v+7*j)%64)
			}
		}
	}
}

// TestActivationTypes checks the activation format of each weight type.
func TestActivationTypes(t *testing.T) {
	want := map[gguf.Type]gguf.Type{
		gguf.TypeF32: gguf.TypeF32, gguf.TypeF16: gguf.TypeF16, gguf.TypeBF16: gguf.TypeBF16,
		gguf.TypeQ8_0: gguf.TypeQ8_0, gguf.TypeQ4_0: gguf.TypeQ8_0, gguf.TypeQ5_0: gguf.TypeQ8_0,
		gguf.TypeQ4_1: gguf.TypeQ8_1, gguf.TypeQ5_1: gguf.TypeQ8_1,
		gguf.TypeQ4_K: gguf.TypeQ8_K, gguf.TypeQ5_K: gguf.TypeQ8_K, gguf.TypeQ6_K: gguf.TypeQ8_K,
	}
	for w, a := range want {
		if !Supported(w) {
			t.Errorf("Supported(%v) = false", w)
		}
		if got := ActivationType(w); got != a {
			t.Errorf("ActivationType(%v) = %v, want %v", w, got, a)
		}
	}
	for _, ty := range []gguf.Type{gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeIQ4_NL, gguf.TypeQ8_K, gguf.Type(99)} {
		if Supported(ty) {
			t.Errorf("Supported(%v) = true", ty)
		}
	}
}

// TestMisusePanics checks that wrong lengths and types panic with a
// message instead of reading out of bounds or computing garbage.
func TestMisusePanics(t *testing.T) {
	cases := map[string]func(){
		"short weights":      func() { VecDot(gguf.TypeQ8_0, 64, make([]byte, 34), make([]byte, 68)) },
		"short activations":  func() { VecDot(gguf.TypeQ4_K, 256, make([]byte, 144), make([]byte, 100)) },
		"partial block":      func() { Dequantize(gguf.TypeQ4_0, make([]byte, 100), make([]float32, 40)) },
		"unsupported type":   func() { VecDot(gguf.TypeQ2_K, 256, make([]byte, 1000), make([]byte, 1000)) },
		"unknown type":       func() { RowBytes(gguf.Type(99), 32) },
		"short quant output": func() { Quantize(gguf.TypeQ6_K, make([]float32, 256), make([]byte, 200)) },
		"matmul short dst":   func() { MatMul(make([]float32, 1), make([]byte, 68), gguf.TypeQ8_0, 2, 32, make([]byte, 34), 1, nil) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
