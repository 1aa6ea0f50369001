package rng

import (
	"math"
	"math/bits"
)

// Philox is torch's CUDA randn reproduced on the CPU: value i of a call is
// drawn from Philox 4×32-10 with counter (offset, 0, i, 0) and the seed as
// key, its first two words turned into one normal value by Box-Muller; each
// call advances offset by one (AUTOMATIC1111's rng_philox).
type Philox struct {
	seed   uint64
	offset uint32
}

// NewPhilox returns the generator for seed.
func NewPhilox(seed uint64) *Philox { return &Philox{seed: seed} }

// The Philox 4×32 multipliers and Weyl key increments.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// philox4x32 runs ten rounds of Philox 4×32 on counter c with key k.
func philox4x32(c [4]uint32, k [2]uint32) [4]uint32 {
	for r := range 10 {
		if r > 0 {
			k[0] += philoxW0
			k[1] += philoxW1
		}
		hi0, lo0 := bits.Mul32(philoxM0, c[0])
		hi1, lo1 := bits.Mul32(philoxM1, c[2])
		c = [4]uint32{hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0}
	}
	return c
}

// Box-Muller constants as float32, as rng_philox spells them.
const (
	twoPow32Inv     float32 = 2.3283064e-10
	twoPow32Inv2Pi  float32 = 2.3283064e-10 * 6.2831855
	halfTwoPow32Inv float32 = twoPow32Inv / 2
	halfTwoPow32Pi  float32 = twoPow32Inv2Pi / 2
)

// Randn returns the next n values.
func (p *Philox) Randn(n int) []float32 {
	out := make([]float32, n)
	key := [2]uint32{uint32(p.seed), uint32(p.seed >> 32)}
	for i := range out {
		g := philox4x32([4]uint32{p.offset, 0, uint32(i), 0}, key)
		out[i] = boxMuller(float32(g[0]), float32(g[1]))
	}
	p.offset++
	return out
}

// boxMuller maps two uniform words to a normal value. The uniforms are
// formed in float32; the logarithm, square root and sine take float64, as
// stable-diffusion.cpp's unqualified C calls do, and round back to float32.
func boxMuller(x, y float32) float32 {
	u := x*twoPow32Inv + halfTwoPow32Inv
	v := y*twoPow32Inv2Pi + halfTwoPow32Pi
	s := float32(math.Sqrt(-2 * math.Log(float64(u))))
	return float32(float64(s) * math.Sin(float64(v)))
}
