package gguf

import (
	"math"
	"testing"
)

func TestF16Values(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		h    uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max", 65504, 0x7bff},
		{"rounds to max", 65519.99, 0x7bff},
		{"rounds to inf", 65520, 0x7c00},
		{"overflow", 1e6, 0x7c00},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"minus inf", float32(math.Inf(-1)), 0xfc00},
		{"smallest normal", 1.0 / (1 << 14), 0x0400},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"half smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000},
		{"above half smallest subnormal", 1.0/(1<<25) + 1.0/(1<<35), 0x0001},
		{"1.5 smallest subnormal ties to even", 1.5 / (1 << 24), 0x0002},
		{"float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"one plus half ulp ties to even", 1 + 1.0/(1<<11), 0x3c00},
		{"one plus 1.5 ulp ties to even", 1 + 3.0/(1<<11), 0x3c02},
		{"third", 1.0 / 3, 0x3555},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToF16(tt.f); got != tt.h {
				t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", tt.f, got, tt.h)
			}
		})
	}
}

// TestF16RoundTrip checks every half: converting to float32 and back gives
// the same bits (NaNs give a NaN).
func TestF16RoundTrip(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToFloat32(h)
		back := Float32ToF16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if !math.IsNaN(float64(f)) || back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %g -> %#04x, want NaN throughout", h, f, back)
			}
			if back&0x1ff != h&0x1ff {
				t.Fatalf("NaN %#04x -> %#04x lost its payload", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// TestF16Rounding checks rounding exhaustively at the points where it
// matters: for every pair of adjacent finite halves of one sign, the
// float32 midpoint between them must round to the even one, and the float32
// neighbours of the midpoint to the nearer one.
func TestF16Rounding(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for m := uint16(0); m < 0x7bff; m++ {
			lo, hi := sign|m, sign|(m+1)
			a, b := float64(F16ToFloat32(lo)), float64(F16ToFloat32(hi))
			mid := float32((a + b) / 2) // exact: halves have 11-bit significands
			if float64(mid) != (a+b)/2 {
				t.Fatalf("midpoint of %#04x and %#04x not exact", lo, hi)
			}
			even := lo
			if lo&1 == 1 {
				even = hi
			}
			if got := Float32ToF16(mid); got != even {
				t.Fatalf("midpoint %g of %#04x and %#04x -> %#04x, want %#04x", mid, lo, hi, got, even)
			}
			toward0 := math.Nextafter32(mid, 0)
			away := math.Nextafter32(mid, float32(math.Copysign(math.Inf(1), float64(mid))))
			if sign != 0 || m != 0 { // the midpoint of ±0 and the smallest subnormal: toward0 is still in (0, mid)
				if got := Float32ToF16(toward0); got != lo {
					t.Fatalf("%g just below the midpoint of %#04x and %#04x -> %#04x, want %#04x", toward0, lo, hi, got, lo)
				}
			}
			if got := Float32ToF16(away); got != hi {
				t.Fatalf("%g just above the midpoint of %#04x and %#04x -> %#04x, want %#04x", away, lo, hi, got, hi)
			}
		}
	}
	// Beyond the largest half: the midpoint between 65504 and the next
	// would-be value (65536) rounds to Inf, anything below it to 65504.
	if got := Float32ToF16(65520); got != 0x7c00 {
		t.Errorf("Float32ToF16(65520) = %#04x, want Inf", got)
	}
	if got := Float32ToF16(math.Nextafter32(65520, 0)); got != 0x7bff {
		t.Errorf("Float32ToF16(just below 65520) = %#04x, want 0x7bff", got)
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		name string
		bits uint32
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"round down", 0x3f807fff, 0x3f80},
		{"tie to even (down)", 0x3f808000, 0x3f80},
		{"tie to even (up)", 0x3f818000, 0x3f82},
		{"round up", 0x3f808001, 0x3f81},
		{"subnormal kept", 0x00010000, 0x0001},
		{"subnormal rounds", 0x00018000, 0x0002},
		{"max rounds to inf", 0x7f7fffff, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"minus inf", 0xff800000, 0xff80},
		{"signalling nan quieted", 0x7f800001, 0x7fc0},
		{"nan payload kept", 0x7fa10000, 0x7fe1},
		{"negative", 0xc0490fdb, 0xc049},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Float32ToBF16(math.Float32frombits(tt.bits))
			if got != tt.want {
				t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", tt.bits, got, tt.want)
			}
		})
	}
	for i := range 1 << 16 {
		h := uint16(i)
		if h&0x7f80 == 0x7f80 && h&0x7f != 0 {
			continue // NaNs get quieted
		}
		if got := Float32ToBF16(BF16ToFloat32(h)); got != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, BF16ToFloat32(h), got)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	xs := []float32{0, 1, -2.5, 65504, 1.0 / (1 << 24), float32(math.Inf(-1))}
	tests := []struct {
		name   string
		encode func([]float32) []byte
		decode func([]byte) ([]float32, error)
		width  int
	}{
		{"F32", EncodeF32, DecodeF32, 4},
		{"F16", EncodeF16, DecodeF16, 2},
		{"BF16", EncodeBF16, DecodeBF16, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.encode(xs)
			if len(p) != tt.width*len(xs) {
				t.Fatalf("encoded %d bytes, want %d", len(p), tt.width*len(xs))
			}
			got, err := tt.decode(p)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range xs {
				want := x
				if tt.name == "BF16" {
					want = BF16ToFloat32(Float32ToBF16(x))
				}
				if got[i] != want {
					t.Errorf("element %d = %g, want %g", i, got[i], want)
				}
			}
			if _, err := tt.decode(p[:len(p)-1]); err == nil {
				t.Errorf("decoding %d bytes: no error", len(p)-1)
			}
		})
	}
}
