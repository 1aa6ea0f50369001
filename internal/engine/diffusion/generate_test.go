package diffusion

import (
	"math"
	"testing"
)

func TestScalings(t *testing.T) {
	skip, out, in := scalings(2, false)
	if skip != 1 || out != -2 || math.Abs(float64(in)-1/math.Sqrt(5)) > 1e-7 {
		t.Errorf("eps: %v %v %v", skip, out, in)
	}
	skip, out, in = scalings(2, true)
	if math.Abs(float64(skip)-0.2) > 1e-7 || math.Abs(float64(out)+2/math.Sqrt(5)) > 1e-6 || math.Abs(float64(in)-1/math.Sqrt(5)) > 1e-7 {
		t.Errorf("v: %v %v %v", skip, out, in)
	}
}

func TestLayouts(t *testing.T) {
	x := make([]float32, 4*2*3)
	for i := range x {
		x[i] = float32(i)
	}
	m := toHWC(x, 2, 3)
	// Channel 1, pixel (1, 2): CHW index 1·6 + 1·3 + 2 = 11.
	if got := m.Data[(1*3+2)*4+1]; got != 11 {
		t.Errorf("HWC value = %v, want 11", got)
	}
	back := toCHW(m)
	for i := range x {
		if back[i] != x[i] {
			t.Fatalf("round trip: %v", back)
		}
	}
}

func TestAlign64(t *testing.T) {
	for in, want := range map[int]int{64: 64, 96: 128, 1: 64, 512: 512, 0: 0} {
		if got := align64(in); got != want {
			t.Errorf("align64(%d) = %d, want %d", in, got, want)
		}
	}
}
