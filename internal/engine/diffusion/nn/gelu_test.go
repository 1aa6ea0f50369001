package nn

import (
	"math"
	"testing"
)

func TestGELU(t *testing.T) {
	in := []float32{-20, -10, -1, 0, 0.5, 1, 3, 10, 25}
	x := append([]float32(nil), in...)
	GELU(x)
	q := append([]float32(nil), in...)
	QuickGELU(q)
	for i, v := range in {
		exact := 0.5 * float64(v) * (1 + math.Tanh(math.Sqrt(2/math.Pi)*float64(v)*(1+0.044715*float64(v)*float64(v))))
		// The table holds F16 results of F16 inputs: within a few F16 steps of the exact value.
		if tol := 4e-3*math.Abs(exact) + 1e-3; math.Abs(float64(x[i])-exact) > tol {
			t.Errorf("GELU(%v) = %v, want %v ± %v", v, x[i], exact, tol)
		}
		quick := float64(v) / (1 + math.Exp(-1.702*float64(v)))
		if tol := 4e-3*math.Abs(quick) + 1e-3; math.Abs(float64(q[i])-quick) > tol {
			t.Errorf("QuickGELU(%v) = %v, want %v ± %v", v, q[i], quick, tol)
		}
	}
	if x[0] != 0 || x[len(x)-1] != 25 {
		t.Errorf("GELU outside ±10 = %v, %v; want exactly 0 and the input", x[0], x[len(x)-1])
	}
}
