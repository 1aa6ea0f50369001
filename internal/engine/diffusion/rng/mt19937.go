package rng

import "math"

// MT19937 is torch's CPU generator and its randn: a Mersenne Twister seeded
// as torch.manual_seed seeds it; for 16 or more values, float32 uniforms
// turned into normals sixteen at a time (the last sixteen redrawn when n is
// not a multiple of 16); for fewer, double-precision Box-Muller pairs.
type MT19937 struct {
	state   [mtN]uint32
	left    int
	next    int
	hasNext bool
	nextG   float64
}

const (
	mtN       = 624
	mtM       = 397
	mtMatrixA = 0x9908b0df
	mtUpper   = 0x80000000
	mtLower   = 0x7fffffff
)

// NewMT19937 returns the generator for seed.
func NewMT19937(seed uint64) *MT19937 {
	g := &MT19937{left: 1}
	g.state[0] = uint32(seed)
	for j := 1; j < mtN; j++ {
		prev := g.state[j-1]
		g.state[j] = 1812433253*(prev^(prev>>30)) + uint32(j)
	}
	return g
}

func twist(u, v uint32) uint32 {
	y := (u&mtUpper | v&mtLower) >> 1
	if v&1 != 0 {
		y ^= mtMatrixA
	}
	return y
}

func (g *MT19937) regenerate() {
	s := &g.state
	for j := 0; j < mtN; j++ {
		s[j] = s[(j+mtM)%mtN] ^ twist(s[j], s[(j+1)%mtN])
	}
	g.left, g.next = mtN, 0
}

// Uint32 returns the next 32-bit output.
func (g *MT19937) Uint32() uint32 {
	g.left--
	if g.left == 0 {
		g.regenerate()
	}
	y := g.state[g.next]
	g.next++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	return y ^ y>>18
}

// uniform32 is torch's float uniform in [0, 1): the low 24 bits of one draw.
func (g *MT19937) uniform32() float32 {
	return float32(g.Uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// uniform64 is torch's double uniform: the low 53 bits of a 64-bit draw
// made of two outputs, the first the high word.
func (g *MT19937) uniform64() float64 {
	hi := uint64(g.Uint32())
	v := hi<<32 | uint64(g.Uint32())
	return float64(v&(1<<53-1)) * (1.0 / (1 << 53))
}

// normal64 is torch's scalar normal_distribution<double>: Box-Muller pairs,
// the second value kept for the next call.
func (g *MT19937) normal64() float64 {
	if g.hasNext {
		g.hasNext = false
		return g.nextG
	}
	u1 := g.uniform64()
	u2 := g.uniform64()
	r := math.Sqrt(-2 * math.Log1p(-u2))
	theta := 2 * math.Pi * u1
	g.nextG, g.hasNext = r*math.Sin(theta), true
	return r * math.Cos(theta)
}

// Randn returns the next n values.
func (g *MT19937) Randn(n int) []float32 {
	out := make([]float32, n)
	if n < 16 {
		for i := range out {
			out[i] = float32(g.normal64())
		}
		return out
	}
	for i := range out {
		out[i] = g.uniform32()
	}
	for i := 0; i+16 <= n; i += 16 {
		normal16(out[i : i+16])
	}
	if n%16 != 0 {
		tail := out[n-16:]
		for i := range tail {
			tail[i] = g.uniform32()
		}
		normal16(tail)
	}
	return out
}

// normal16 turns 16 uniforms into normals in float32 arithmetic, pairing
// value j with value j+8 (torch's normal_fill_16). The transcendental
// functions are computed in float64 and rounded, which is what glibc's
// correctly rounded float versions give.
func normal16(d []float32) {
	for j := range 8 {
		u1 := 1 - d[j]
		u2 := d[j+8]
		r := float32(math.Sqrt(float64(-2 * float32(math.Log(float64(u1))))))
		theta := 2 * float32(math.Pi) * u2
		d[j] = r * float32(math.Cos(float64(theta)))
		d[j+8] = r * float32(math.Sin(float64(theta)))
	}
}
