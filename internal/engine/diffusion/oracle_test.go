package diffusion

import (
	"context"
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/kernels"
)

// compare returns the mean absolute difference of two images' RGB values
// and the fraction of values more than 4 levels apart.
func compare(a, b image.Image) (mad, over4 float64) {
	r := a.Bounds()
	var n int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			for _, d := range []float64{
				float64(ar>>8) - float64(br>>8), float64(ag>>8) - float64(bg>>8), float64(ab>>8) - float64(bb>>8),
			} {
				d = math.Abs(d)
				mad += d
				if d > 4 {
					over4++
				}
				n++
			}
		}
	}
	return mad / float64(n), over4 / float64(n)
}

// TestOracleImages generates every case of the oracles with the engine and
// compares the pixels with stable-diffusion.cpp's. It reports the figures;
// the target is a mean absolute difference ≤ 1 level and ≤ 1% of
// values more than 4 levels apart.
func TestOracleImages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes the oracle checkpoints and generates every case")
	}
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{sdtest.SD1, sdtest.SD2} {
		t.Run(name, func(t *testing.T) {
			o, err := sdtest.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".safetensors")
			if err := o.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			m, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, c := range o.Cases {
				img, err := m.Generate(context.Background(), Params{
					Prompt: c.Prompt, Negative: c.Negative, Width: c.W, Height: c.H,
					Steps: c.Steps, CFGScale: float32(c.CFG), Sampler: c.Sampler, Scheduler: c.Scheduler,
					Seed: uint64(c.Seed), RNG: c.RNG, Prediction: c.Prediction,
				}, pool, nil)
				if err != nil {
					t.Fatalf("%s: %v", c.Image, err)
				}
				want, err := o.Golden(c)
				if err != nil {
					t.Fatal(err)
				}
				if img.Bounds() != want.Bounds() {
					t.Fatalf("%s: %v, want %v", c.Image, img.Bounds(), want.Bounds())
				}
				mad, over := compare(img, want)
				t.Logf("%s (%s %s, %s, cfg %g): MAD %.3f levels, %.2f%% > 4 levels", c.Image, c.Sampler, c.Scheduler, c.RNG, c.CFG, mad, 100*over)
				if mad > 1 || over > 0.01 {
					t.Errorf("%s: MAD %.3f, %.2f%% over 4 levels; want ≤ 1 and ≤ 1%%", c.Image, mad, 100*over)
				}
			}
		})
	}
}
