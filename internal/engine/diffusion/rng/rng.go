// Package rng generates the Gaussian noise of a diffusion run exactly as the
// tools whose images users reproduce: "cuda" matches torch's CUDA randn
// (Philox 4×32-10, AUTOMATIC1111's default, computed on the CPU as its
// rng_philox does) and "cpu" matches torch's CPU randn (MT19937, ComfyUI's
// default). Both follow stable-diffusion.cpp, whose images the engine is
// checked against, down to where it computes in float32 or float64.
package rng

import "fmt"

// Source draws standard normal values. Each call continues the sequence, as
// successive torch.randn calls on one generator do.
type Source interface {
	// Randn returns n values of N(0, 1).
	Randn(n int) []float32
}

// Names of the generators, as the command line and the API spell them.
const (
	CUDA = "cuda"
	CPU  = "cpu"
)

// New returns the named generator seeded with seed.
func New(name string, seed uint64) (Source, error) {
	switch name {
	case CUDA:
		return NewPhilox(seed), nil
	case CPU:
		return NewMT19937(seed), nil
	}
	return nil, fmt.Errorf("rng: unknown generator %q (want %q or %q)", name, CUDA, CPU)
}
