package rng

import (
	"math"
	"testing"
)

// TestPhiloxKAT checks the Philox 4×32-10 core against the known-answer
// vectors of Random123 (kat_vectors: philox4x32 10 rounds).
func TestPhiloxKAT(t *testing.T) {
	tests := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{}, [2]uint32{}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, tt := range tests {
		if got := philox4x32(tt.ctr, tt.key); got != tt.want {
			t.Errorf("philox4x32(%#x, %#x) = %#x, want %#x", tt.ctr, tt.key, got, tt.want)
		}
	}
}

// TestMT19937Outputs checks the twister against the C++ standard's
// requirements for std::mt19937 with the default seed 5489: its first
// output, and its 10000th (4123659995).
func TestMT19937Outputs(t *testing.T) {
	g := NewMT19937(5489)
	if got := g.Uint32(); got != 3499211612 {
		t.Errorf("first output = %d, want 3499211612", got)
	}
	for range 9998 {
		g.Uint32()
	}
	if got := g.Uint32(); got != 4123659995 {
		t.Errorf("10000th output = %d, want 4123659995", got)
	}
}

// TestTorchCPURandn compares with torch: torch.manual_seed(0) then
// torch.randn(4, 4) (the 16-at-a-time path) and torch.randn(2, 3) (the
// scalar double path), as torch prints them (4 decimals).
func TestTorchCPURandn(t *testing.T) {
	tests := []struct {
		n    int
		want []float64
	}{
		{16, []float64{-1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.6920, -0.3160, -2.1152,
			0.3223, -1.2633, 0.3500, 0.3081, 0.1198, 1.2377, 1.1168, -0.2473}},
		{6, []float64{1.5410, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986}},
	}
	for _, tt := range tests {
		got := NewMT19937(0).Randn(tt.n)
		for i, w := range tt.want {
			if math.Abs(float64(got[i])-w) > 1e-4 {
				t.Errorf("randn(%d)[%d] = %.4f, want %.4f", tt.n, i, got[i], w)
			}
		}
	}
}

func TestRandnShapes(t *testing.T) {
	for _, name := range []string{CUDA, CPU} {
		for _, n := range []int{1, 15, 16, 17, 4 * 8 * 8} {
			a, err := New(name, 42)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := New(name, 42)
			x, y := a.Randn(n), b.Randn(n)
			var sum, sq float64
			for i := range x {
				if x[i] != y[i] || math.IsNaN(float64(x[i])) || math.IsInf(float64(x[i]), 0) {
					t.Fatalf("%s n=%d: value %d = %v / %v", name, n, i, x[i], y[i])
				}
				sum += float64(x[i])
				sq += float64(x[i]) * float64(x[i])
			}
			if n >= 256 {
				mean, variance := sum/float64(n), sq/float64(n)-sum*sum/float64(n*n)
				if math.Abs(mean) > 0.2 || math.Abs(variance-1) > 0.25 {
					t.Errorf("%s: mean %.3f, variance %.3f of %d values", name, mean, variance, n)
				}
			}
			// A second call continues the sequence.
			if z := a.Randn(n); n > 1 && z[0] == x[0] && z[n-1] == x[n-1] {
				t.Errorf("%s n=%d: second call repeated the first", name, n)
			}
		}
	}
	if _, err := New("gpu", 1); err == nil {
		t.Error(`New("gpu") succeeded`)
	}
}

// TestMT19937Tail: when n is not a multiple of 16 the last 16 values are
// redrawn, so the first n-16 agree with a run of the same length rounded
// down to 16, and the tail differs.
func TestMT19937Tail(t *testing.T) {
	a := NewMT19937(7).Randn(40)
	b := NewMT19937(7).Randn(32)
	for i := range 24 {
		if a[i] != b[i] {
			t.Fatalf("value %d: %v vs %v", i, a[i], b[i])
		}
	}
}
