// Package schedule holds the noise levels of Stable Diffusion 1.x and 2.x
// (the "CompVis" discrete-time model: 1000 timesteps, betas linear in
// their square root from 0.00085 to 0.012) and the schedules that pick a
// sampler's sigmas from them, named as stable-diffusion.cpp and
// AUTOMATIC1111 name them: discrete and karras.
//
// Arithmetic follows stable-diffusion.cpp step for step in float32, so the
// sigmas, and the timesteps the UNet is told, are the same numbers.
package schedule

import (
	"fmt"
	"math"
)

// Timesteps is the number of training timesteps.
const Timesteps = 1000

// Model is the discrete noise schedule of a CompVis-style model.
type Model struct {
	sigmas    [Timesteps]float32
	logSigmas [Timesteps]float32
}

// NewModel computes the SD 1.x/2.x schedule: alphas_cumprod as the running
// product of 1-β², β linear from √0.00085 to √0.012, and
// σ_t = √((1-ᾱ_t)/ᾱ_t).
func NewModel() *Model {
	m := &Model{}
	lo := float32(math.Sqrt(0.00085))
	hi := float32(math.Sqrt(0.012))
	amount := hi - lo
	product := float32(1)
	for i := range Timesteps {
		beta := lo + amount*(float32(i)/float32(Timesteps-1))
		product *= 1 - beta*beta
		m.sigmas[i] = float32(math.Sqrt(float64((1 - product) / product)))
		m.logSigmas[i] = float32(math.Log(float64(m.sigmas[i])))
	}
	return m
}

// SigmaMin is the noise level of the first timestep, the smallest.
func (m *Model) SigmaMin() float32 { return m.sigmas[0] }

// SigmaMax is the noise level of the last timestep.
func (m *Model) SigmaMax() float32 { return m.sigmas[Timesteps-1] }

// TToSigma interpolates σ at a fractional timestep in log space.
func (m *Model) TToSigma(t float32) float32 {
	lo := int(math.Floor(float64(t)))
	hi := int(math.Ceil(float64(t)))
	lo = min(max(lo, 0), Timesteps-1)
	hi = min(max(hi, 0), Timesteps-1)
	w := t - float32(lo)
	return float32(math.Exp(float64((1-w)*m.logSigmas[lo] + w*m.logSigmas[hi])))
}

// SigmaToT is TToSigma's inverse: the fractional timestep the UNet is
// given for a noise level.
func (m *Model) SigmaToT(sigma float32) float32 {
	ls := float32(math.Log(float64(sigma)))
	low := 0
	for _, v := range m.logSigmas {
		if ls-v >= 0 {
			low++
		}
	}
	low = min(max(low-1, 0), Timesteps-2)
	high := low + 1
	l, h := m.logSigmas[low], m.logSigmas[high]
	w := (l - ls) / (l - h)
	w = max(0, min(1, w))
	return (1-w)*float32(low) + w*float32(high)
}

// Default returns the schedule stable-diffusion.cpp picks for a sampler
// when none is given: lcm for lcm, simple for ddim_trailing, discrete
// otherwise.
func Default(sampler string) string {
	switch sampler {
	case "lcm":
		return "lcm"
	case "ddim_trailing":
		return "simple"
	}
	return "discrete"
}

// Sigmas returns n+1 noise levels for n steps of the named schedule,
// ending in 0.
func (m *Model) Sigmas(schedule string, n int) ([]float32, error) {
	if n < 1 {
		return nil, fmt.Errorf("schedule: %d steps, want at least 1", n)
	}
	switch schedule {
	case "discrete", "default", "":
		return m.discrete(n), nil
	case "karras":
		return karras(n, m.SigmaMin(), m.SigmaMax()), nil
	case "simple":
		return m.simple(n), nil
	case "lcm":
		return m.lcm(n), nil
	}
	return nil, fmt.Errorf("schedule: unknown schedule %q (want discrete, karras, simple or lcm)", schedule)
}

// discrete spaces n timesteps evenly from 999 down to 0.
func (m *Model) discrete(n int) []float32 {
	const tMax = Timesteps - 1
	if n == 1 {
		return []float32{m.TToSigma(tMax), 0}
	}
	out := make([]float32, 0, n+1)
	step := float32(tMax) / float32(n-1)
	for i := range n {
		out = append(out, m.TToSigma(tMax-step*float32(i)))
	}
	return append(out, 0)
}

// karras is Karras et al. 2022, eq. 5, with ρ = 7.
func karras(n int, sigmaMin, sigmaMax float32) []float32 {
	const rho = 7
	sigmaMin = max(sigmaMin, 1e-6)
	minInv := float32(math.Pow(float64(sigmaMin), 1.0/rho))
	maxInv := float32(math.Pow(float64(sigmaMax), 1.0/rho))
	out := make([]float32, n+1)
	for i := range n {
		// n == 1 divides by zero as in stable-diffusion.cpp: 0/0 is NaN
		// there too; guard it to σ_max.
		frac := float32(0)
		if n > 1 {
			frac = float32(i) / (float32(n) - 1)
		}
		out[i] = float32(math.Pow(float64(maxInv+frac*(minInv-maxInv)), rho))
	}
	return out
}

// simple takes every (1000/n)th timestep from the end (ComfyUI's simple).
func (m *Model) simple(n int) []float32 {
	out := make([]float32, 0, n+1)
	factor := float32(Timesteps) / float32(n)
	for i := range n {
		t := max(Timesteps-1-int(float32(i)*factor), 0)
		out = append(out, m.TToSigma(float32(t)))
	}
	return append(out, 0)
}

// lcm takes the timesteps an LCM was distilled on: n of the 50 original
// ones, evenly, from 999 down.
func (m *Model) lcm(n int) []float32 {
	const original = 50
	const k = Timesteps / original
	out := make([]float32, 0, n+1)
	for i := range n {
		index := i * original / n
		out = append(out, m.TToSigma(float32((original-index)*k-1)))
	}
	return append(out, 0)
}
