package vae

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/kernels"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// oracleVAE writes the SD 1.x oracle checkpoint's VAE decoder tensors, with
// the recipe's values (the same as in the full file), into memory.
func oracleVAE(t *testing.T) *safetensors.File {
	t.Helper()
	o, err := sdtest.Load(sdtest.SD1)
	if err != nil {
		t.Fatal(err)
	}
	all, err := o.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	var infos []safetensors.TensorInfo
	for _, ti := range all {
		if strings.HasPrefix(ti.Name, prefix+"decoder.") || strings.HasPrefix(ti.Name, prefix+"post_quant_conv.") {
			infos = append(infos, ti)
		}
	}
	var b bytes.Buffer
	if err := sdtest.WriteCheckpoint(&b, infos, o.RecipeSeed); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDecodeOracle decodes an 8×8 latent with the oracle checkpoint's full
// SD VAE decoder: a sanity check (size, finite, deterministic), not yet a
// pixel comparison with stable-diffusion.cpp, which needs the UNet too.
func TestDecodeOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes with the full 50M-parameter VAE")
	}
	d, err := Load(oracleVAE(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.levels) != 4 || len(d.levels[0].blocks) != 3 || d.levels[3].upsample != nil {
		t.Fatalf("decoder structure: %d levels", len(d.levels))
	}
	latent := &nn.Map{C: 4, H: 8, W: 8, Data: rng.NewPhilox(42).Randn(4 * 8 * 8)}
	pool := kernels.NewPool(2)
	defer pool.Close()
	a := d.Decode(latent, pool)
	b := d.Decode(latent, pool)
	if a.C != 3 || a.H != 64 || a.W != 64 {
		t.Fatalf("decoded %d×%d×%d, want 3×64×64", a.C, a.H, a.W)
	}
	for i, v := range a.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v != b.Data[i] {
			t.Fatalf("value %d = %v (again %v)", i, v, b.Data[i])
		}
	}
	img := Image(a)
	if img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
		t.Errorf("image %v", img.Bounds())
	}
}

func TestImage(t *testing.T) {
	m := &nn.Map{C: 3, H: 1, W: 2, Data: []float32{-1, 0, 1, -2, 2, 0.999}}
	img := Image(m)
	want := [][4]uint8{{0, 127, 255, 255}, {0, 255, 254, 255}}
	for x, w := range want {
		c := img.RGBAAt(x, 0)
		if [4]uint8{c.R, c.G, c.B, c.A} != w {
			t.Errorf("pixel %d = %v, want %v", x, c, w)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	var b bytes.Buffer
	if err := safetensors.Write(&b, nil, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := safetensors.Parse(b.Bytes())
	if _, err := Load(f); err == nil {
		t.Error("Load(empty) succeeded")
	}
}
