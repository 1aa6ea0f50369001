package diffusion

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/neovratz/neovratz/internal/engine/diffusion/clip"
	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sample"
	"github.com/neovratz/neovratz/internal/engine/diffusion/schedule"
	"github.com/neovratz/neovratz/internal/engine/diffusion/vae"
	"github.com/neovratz/neovratz/internal/kernels"
)

// Params are one text-to-image generation's settings, named as
// stable-diffusion.cpp names them.
type Params struct {
	Prompt, Negative string
	Width, Height    int
	Steps            int
	CFGScale         float32
	Sampler          string // euler, euler_a, heun, dpm++2m, lcm, ddim_trailing
	Scheduler        string // discrete, karras, simple, lcm; "" for the sampler's default
	Seed             uint64
	RNG              string // cuda or cpu
	// Prediction is "eps" or "v"; "" means eps (a checkpoint's weights
	// cannot tell).
	Prediction string
	// ClipSkip is 0 for the family's default.
	ClipSkip int
}

// Progress is called after each completed sampling step.
type Progress func(step, steps int) error

// Generate runs a text-to-image generation. The size is aligned up to a
// multiple of 64 as stable-diffusion.cpp aligns it.
func (m *Model) Generate(ctx context.Context, p Params, pool *kernels.Pool, progress Progress) (image.Image, error) {
	if p.Steps < 1 {
		return nil, fmt.Errorf("diffusion: %d steps, want at least 1", p.Steps)
	}
	w, h := align64(p.Width), align64(p.Height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("diffusion: size %d×%d", p.Width, p.Height)
	}
	scheduler := p.Scheduler
	if scheduler == "" {
		scheduler = schedule.Default(p.Sampler)
	}
	sigmas, err := m.schedule.Sigmas(scheduler, p.Steps)
	if err != nil {
		return nil, err
	}
	noise, err := rng.New(p.RNG, p.Seed)
	if err != nil {
		return nil, err
	}
	pad := clip.PadSD1
	if m.Kind.Family == SD2 {
		pad = clip.PadSD2
	}
	cond, err := m.text.Condition(m.tok.Tokenize(p.Prompt, pad), p.ClipSkip, pool)
	if err != nil {
		return nil, err
	}
	var uncond []float32
	if p.CFGScale != 1 {
		if uncond, err = m.text.Condition(m.tok.Tokenize(p.Negative, pad), p.ClipSkip, pool); err != nil {
			return nil, err
		}
	}
	lw, lh := w/8, h/8
	// The latent is kept channel-major (C, H, W) as ggml holds it, so the
	// noise lands on the same elements; the UNet sees it pixel-major.
	x := noise.Randn(4 * lh * lw)
	for i := range x {
		x[i] = 0 + x[i]*sigmas[0]
	}
	v := p.Prediction == "v"
	steps := p.Steps
	denoise := func(x []float32, sigma float32, step int) ([]float32, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cSkip, cOut, cIn := scalings(sigma, v)
		in := make([]float32, len(x))
		for i, xi := range x {
			in[i] = xi * cIn
		}
		t := m.schedule.SigmaToT(sigma)
		latent := toHWC(in, lh, lw)
		out, err := m.unet.Forward(latent, t, cond, pool)
		if err != nil {
			return nil, err
		}
		pred := toCHW(out)
		if uncond != nil {
			u, err := m.unet.Forward(latent, t, uncond, pool)
			if err != nil {
				return nil, err
			}
			pu := toCHW(u)
			for i := range pred {
				pred[i] = pu[i] + p.CFGScale*(pred[i]-pu[i])
			}
		}
		den := make([]float32, len(x))
		for i := range den {
			den[i] = pred[i]*cOut + x[i]*cSkip
		}
		if step > 0 && progress != nil {
			if err := progress(step, steps); err != nil {
				return nil, err
			}
		}
		return den, nil
	}
	final, err := sample.Run(p.Sampler, denoise, x, sigmas, noise, -1)
	if err != nil {
		return nil, err
	}
	return vae.Image(m.vae.Decode(toHWC(final, lh, lw), pool)), nil
}

// scalings are the CompVis denoiser's c_skip, c_out and c_in for eps- or
// v-prediction (sigma_data = 1).
func scalings(sigma float32, v bool) (cSkip, cOut, cIn float32) {
	r := float32(math.Sqrt(float64(sigma*sigma + 1)))
	cIn = 1 / r
	if !v {
		return 1, -sigma, cIn
	}
	return 1 / (sigma*sigma + 1), -sigma / r, cIn
}

func align64(n int) int { return (n + 63) / 64 * 64 }

func toHWC(x []float32, h, w int) *nn.Map {
	c := len(x) / (h * w)
	m := nn.NewMap(c, h, w)
	for ch := range c {
		for p := range h * w {
			m.Data[p*c+ch] = x[ch*h*w+p]
		}
	}
	return m
}

func toCHW(m *nn.Map) []float32 {
	out := make([]float32, len(m.Data))
	n := m.H * m.W
	for ch := range m.C {
		for p := range n {
			out[ch*n+p] = m.Data[p*m.C+ch]
		}
	}
	return out
}
