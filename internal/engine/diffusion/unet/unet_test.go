package unet

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

// oracleUNet writes an oracle checkpoint's UNet tensors with the recipe's
// values (the same as in the full file) into memory.
func oracleUNet(t *testing.T, name string) *safetensors.File {
	t.Helper()
	o, err := sdtest.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	all, err := o.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	var infos []safetensors.TensorInfo
	for _, ti := range all {
		if strings.HasPrefix(ti.Name, prefix) {
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

// TestOracleUNet runs each oracle's UNet once on an 8×8 latent: a sanity
// check (structure, shape, finite, deterministic, conditioned on time and
// text), not yet a comparison with stable-diffusion.cpp.
func TestOracleUNet(t *testing.T) {
	for _, tt := range []struct {
		oracle          string
		cfg             Config
		ctxDim, inBlock int
	}{
		{sdtest.SD1, Config{Heads: 8}, 768, 12},
		{sdtest.SD2, Config{HeadDim: 64}, 1024, 12},
	} {
		t.Run(tt.oracle, func(t *testing.T) {
			u, err := Load(oracleUNet(t, tt.oracle), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if u.ContextDim() != tt.ctxDim || len(u.input) != tt.inBlock || len(u.output) != tt.inBlock {
				t.Fatalf("context %d, %d input and %d output blocks", u.ContextDim(), len(u.input), len(u.output))
			}
			r := rng.NewPhilox(7)
			x := &nn.Map{C: 4, H: 8, W: 8, Data: r.Randn(4 * 64)}
			ctx := r.Randn(77 * tt.ctxDim)
			pool := kernels.NewPool(2)
			defer pool.Close()
			a, err := u.Forward(x, 500, ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := u.Forward(x, 500, ctx, pool)
			if a.C != 4 || a.H != 8 || a.W != 8 {
				t.Fatalf("output %d×%d×%d", a.C, a.H, a.W)
			}
			for i, v := range a.Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v != b.Data[i] {
					t.Fatalf("value %d = %v (again %v)", i, v, b.Data[i])
				}
			}
			c, _ := u.Forward(x, 100, ctx, pool)
			ctx2 := append([]float32(nil), ctx...)
			for i := range ctx2[:tt.ctxDim*5] {
				ctx2[i] = -ctx2[i]
			}
			d, _ := u.Forward(x, 500, ctx2, pool)
			if diff(a.Data, c.Data) == 0 || diff(a.Data, d.Data) == 0 {
				t.Error("output ignores the timestep or the context")
			}
		})
	}
}

func diff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s
}

func TestTimestepEmbedding(t *testing.T) {
	e := timestepEmbedding(0, 8)
	for i := range 4 {
		if e[i] != 1 || e[i+4] != 0 {
			t.Fatalf("t=0: %v, want cos 1 then sin 0", e)
		}
	}
	e = timestepEmbedding(10, 4)
	// f_0 = 1, f_1 = 10000^(-1/2) = 0.01.
	want := []float64{math.Cos(10), math.Cos(0.1), math.Sin(10), math.Sin(0.1)}
	for i, w := range want {
		if math.Abs(float64(e[i])-w) > 1e-5 {
			t.Errorf("t=10: %v, want %v", e, want)
			break
		}
	}
}

func TestLoadErrors(t *testing.T) {
	var b bytes.Buffer
	if err := safetensors.Write(&b, nil, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := safetensors.Parse(b.Bytes())
	if _, err := Load(f, Config{Heads: 8}); err == nil {
		t.Error("Load(empty) succeeded")
	}
}
