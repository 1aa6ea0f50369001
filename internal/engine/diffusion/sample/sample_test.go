package sample

import (
	"errors"
	"math"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/schedule"
)

// pointDenoiser is the exact denoiser of data concentrated at x0: every
// sampler must land on x0 (to rounding) whatever the noise.
func pointDenoiser(x0 []float32, calls *[]int) Denoiser {
	return func(x []float32, sigma float32, step int) ([]float32, error) {
		*calls = append(*calls, step)
		return append([]float32(nil), x0...), nil
	}
}

func TestSamplersReachTheData(t *testing.T) {
	m := schedule.NewModel()
	x0 := []float32{0.5, -1, 2, 0, 0.25, -0.75, 1.5, 3}
	for _, name := range Names {
		for _, sch := range []string{"discrete", "karras"} {
			t.Run(name+"/"+sch, func(t *testing.T) {
				sigmas, err := m.Sigmas(sch, 5)
				if err != nil {
					t.Fatal(err)
				}
				noise := rng.NewPhilox(42)
				x := noise.Randn(len(x0))
				for i := range x {
					x[i] *= sigmas[0]
				}
				var calls []int
				got, err := Run(name, pointDenoiser(x0, &calls), x, sigmas, noise, -1)
				if err != nil {
					t.Fatal(err)
				}
				for i := range x0 {
					if math.Abs(float64(got[i]-x0[i])) > 1e-3 {
						t.Fatalf("x[%d] = %v, want %v", i, got[i], x0[i])
					}
				}
				// Progress: steps 1..5 each reported once as complete.
				done := 0
				for _, s := range calls {
					if s > 0 {
						done++
						if s != done {
							t.Fatalf("steps reported %v", calls)
						}
					}
				}
				if done != 5 {
					t.Errorf("%d steps completed, want 5 (%v)", done, calls)
				}
			})
		}
	}
}

// TestEulerStep checks one Euler step by hand.
func TestEulerStep(t *testing.T) {
	den := func(x []float32, sigma float32, step int) ([]float32, error) { return []float32{1}, nil }
	got, err := Run("euler", den, []float32{3}, []float32{2, 1}, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	// d = (3-1)/2 = 1; x = 3 + 1·(1-2) = 2.
	if got[0] != 2 {
		t.Errorf("x = %v, want 2", got[0])
	}
}

func TestAncestralStep(t *testing.T) {
	down, up := ancestralStep(2, 1, 1)
	// σ_up = √(1·(4-1)/4) = √0.75, σ_down = √(1-0.75) = 0.5.
	if math.Abs(float64(up)-math.Sqrt(0.75)) > 1e-6 || math.Abs(float64(down)-0.5) > 1e-6 {
		t.Errorf("down, up = %v, %v", down, up)
	}
	if down, up := ancestralStep(2, 1, 0); down != 1 || up != 0 {
		t.Errorf("eta 0: %v, %v", down, up)
	}
}

func TestRunErrors(t *testing.T) {
	boom := errors.New("boom")
	fail := func([]float32, float32, int) ([]float32, error) { return nil, boom }
	for _, name := range Names {
		if _, err := Run(name, fail, []float32{1}, []float32{1, 0.5, 0}, rng.NewMT19937(1), -1); !errors.Is(err, boom) {
			t.Errorf("%s: %v, want the denoiser's error", name, err)
		}
	}
	ok := func(x []float32, _ float32, _ int) ([]float32, error) { return x, nil }
	if _, err := Run("plms", ok, []float32{1}, []float32{1, 0}, nil, -1); err == nil {
		t.Error("unknown sampler accepted")
	}
	if _, err := Run("euler_a", ok, []float32{1}, []float32{2, 1, 0}, nil, -1); err == nil {
		t.Error("euler_a without noise accepted")
	}
}
