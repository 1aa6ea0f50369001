// Package sample runs the k-diffusion samplers of stable-diffusion.cpp on a
// denoiser: euler, euler_a, heun, dpm++2m, lcm and ddim_trailing. Each step
// is computed in float32, element by element in the same order of
// operations, so that with the same denoiser outputs and noise the latents
// agree with stable-diffusion.cpp's to rounding.
package sample

import (
	"fmt"
	"math"
)

// Denoiser returns the model's estimate of the clean latent for x at noise
// level sigma. step is the 1-based step a call completes, or its negative
// for an evaluation that does not complete one (heun's first), as
// stable-diffusion.cpp reports progress.
type Denoiser func(x []float32, sigma float32, step int) ([]float32, error)

// Noise draws standard normal values (an rng.Source).
type Noise interface {
	Randn(n int) []float32
}

// Names are the samplers this package runs.
var Names = []string{"euler", "euler_a", "heun", "dpm++2m", "lcm", "ddim_trailing"}

// Run samples from x (the initial noise already scaled by sigmas[0]) down
// the sigmas (ending in 0) and returns the final latent. eta < 0 picks
// stable-diffusion.cpp's default: 1 for euler_a, 0 for ddim_trailing.
// noise is used by the ancestral samplers (euler_a, lcm, ddim_trailing with
// eta > 0) and may be nil for the others.
func Run(name string, d Denoiser, x []float32, sigmas []float32, noise Noise, eta float32) ([]float32, error) {
	if len(sigmas) < 2 {
		return nil, fmt.Errorf("sample: %d sigmas, want at least 2", len(sigmas))
	}
	x = append([]float32(nil), x...)
	switch name {
	case "euler":
		return euler(d, x, sigmas)
	case "euler_a":
		if eta < 0 {
			eta = 1
		}
		return eulerAncestral(d, x, sigmas, noise, eta)
	case "ddim_trailing":
		// DDIM is Euler ancestral on the trailing (simple) schedule.
		if eta < 0 {
			eta = 0
		}
		return eulerAncestral(d, x, sigmas, noise, eta)
	case "heun":
		return heun(d, x, sigmas)
	case "dpm++2m":
		return dpmpp2m(d, x, sigmas)
	case "lcm":
		return lcm(d, x, sigmas, noise)
	}
	return nil, fmt.Errorf("sample: unknown sampler %q (want one of %v)", name, Names)
}

func euler(d Denoiser, x, sigmas []float32) ([]float32, error) {
	for i := 0; i+1 < len(sigmas); i++ {
		s := sigmas[i]
		den, err := d(x, s, i+1)
		if err != nil {
			return nil, err
		}
		dt := sigmas[i+1] - s
		for j := range x {
			x[j] += (x[j] - den[j]) / s * dt
		}
	}
	return x, nil
}

// ancestralStep splits a step from sigmaFrom to sigmaTo into a
// deterministic part down to sigmaDown and fresh noise of sigmaUp.
func ancestralStep(sigmaFrom, sigmaTo, eta float32) (down, up float32) {
	if eta <= 0 {
		return sigmaTo, 0
	}
	from2, to2 := sigmaFrom*sigmaFrom, sigmaTo*sigmaTo
	if from2 > 0 {
		term := to2 * (from2 - to2) / from2
		up = min(sigmaTo, eta*sqrt32(max(term, 0)))
	}
	down2 := to2 - up*up
	if down2 > 0 {
		down = sqrt32(down2)
	}
	return down, up
}

func eulerAncestral(d Denoiser, x, sigmas []float32, noise Noise, eta float32) ([]float32, error) {
	for i := 0; i+1 < len(sigmas); i++ {
		s, to := sigmas[i], sigmas[i+1]
		den, err := d(x, s, i+1)
		if err != nil {
			return nil, err
		}
		switch {
		case to == 0:
			copy(x, den)
		case eta == 0:
			r := to / s
			for j := range x {
				x[j] = r*x[j] + (1-r)*den[j]
			}
		default:
			down, up := ancestralStep(s, to, eta)
			r := down / s
			for j := range x {
				x[j] = r*x[j] + (1-r)*den[j]
			}
			if up > 0 {
				if noise == nil {
					return nil, fmt.Errorf("sample: an ancestral sampler needs noise")
				}
				for j, z := range noise.Randn(len(x)) {
					x[j] += z * up
				}
			}
		}
	}
	return x, nil
}

func heun(d Denoiser, x, sigmas []float32) ([]float32, error) {
	dx := make([]float32, len(x))
	x2 := make([]float32, len(x))
	for i := 0; i+1 < len(sigmas); i++ {
		s, next := sigmas[i], sigmas[i+1]
		// The first evaluation completes the step only when it is the
		// last (to σ = 0, no second evaluation). stable-diffusion.cpp
		// reports it as incomplete there, and so never reports the
		// final step; the numbers are the same either way.
		step := -(i + 1)
		if next == 0 {
			step = i + 1
		}
		den, err := d(x, s, step)
		if err != nil {
			return nil, err
		}
		dt := next - s
		for j := range x {
			dx[j] = (x[j] - den[j]) / s
		}
		if next == 0 {
			for j := range x {
				x[j] += dx[j] * dt
			}
			continue
		}
		for j := range x {
			x2[j] = x[j] + dx[j]*dt
		}
		den2, err := d(x2, next, i+1)
		if err != nil {
			return nil, err
		}
		for j := range x {
			avg := (dx[j] + (x2[j]-den2[j])/next) / 2
			x[j] += avg * dt
		}
	}
	return x, nil
}

func dpmpp2m(d Denoiser, x, sigmas []float32) ([]float32, error) {
	tFn := func(s float32) float32 { return -float32(math.Log(float64(s))) }
	var old []float32
	for i := 0; i+1 < len(sigmas); i++ {
		den, err := d(x, sigmas[i], i+1)
		if err != nil {
			return nil, err
		}
		t, tNext := tFn(sigmas[i]), tFn(sigmas[i+1])
		h := tNext - t
		a := sigmas[i+1] / sigmas[i]
		b := float32(math.Exp(float64(-h))) - 1
		if i == 0 || sigmas[i+1] == 0 {
			for j := range x {
				x[j] = a*x[j] - b*den[j]
			}
		} else {
			hLast := t - tFn(sigmas[i-1])
			r := hLast / h
			c1 := 1 + 1/(2*r)
			c2 := 1 / (2 * r)
			for j := range x {
				dd := c1*den[j] - c2*old[j]
				x[j] = a*x[j] - b*dd
			}
		}
		old = den
	}
	return x, nil
}

func lcm(d Denoiser, x, sigmas []float32, noise Noise) ([]float32, error) {
	for i := 0; i+1 < len(sigmas); i++ {
		den, err := d(x, sigmas[i], i+1)
		if err != nil {
			return nil, err
		}
		copy(x, den)
		if next := sigmas[i+1]; next > 0 {
			if noise == nil {
				return nil, fmt.Errorf("sample: lcm needs noise")
			}
			for j, z := range noise.Randn(len(x)) {
				x[j] += z * next
			}
		}
	}
	return x, nil
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
