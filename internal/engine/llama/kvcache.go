package llama

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// KVCache holds one sequence's attention keys and values for every layer, as F16 (llama.cpp's
// default cache type, so attention sees the same rounded values). It grows as the sequence
// does, up to its context size, so a short request does not pay for a long context.
type KVCache struct {
	k, v  [][]uint16 // per layer, position-major: [pos][kvDim]
	kvDim int
	n     int // positions filled
	ctx   int // most positions
}

// NewKVCache returns an empty cache for a sequence of at most ctx positions.
func (m *Model) NewKVCache(ctx int) *KVCache {
	c := &KVCache{k: make([][]uint16, m.Params.Layers), v: make([][]uint16, m.Params.Layers), kvDim: m.Params.kvDim(), ctx: ctx}
	return c
}

// Len returns the number of positions the cache holds.
func (c *KVCache) Len() int { return c.n }

// Reset empties the cache, keeping its memory.
func (c *KVCache) Reset() { c.n = 0 }

// Bytes returns the memory the cache holds.
func (c *KVCache) Bytes() int {
	total := 0
	for i := range c.k {
		total += 2 * (cap(c.k[i]) + cap(c.v[i]))
	}
	return total
}

// reserve makes room for n more positions.
func (c *KVCache) reserve(n int) error {
	if c.n+n > c.ctx {
		return fmt.Errorf("%w: %d positions do not fit in a context of %d", ErrContextFull, c.n+n, c.ctx)
	}
	need := (c.n + n) * c.kvDim
	for i := range c.k {
		if cap(c.k[i]) < need {
			// Grow by half again (at least to need) but never past the context.
			newCap := min(max(need, cap(c.k[i])*3/2, 64*c.kvDim), c.ctx*c.kvDim)
			c.k[i] = append(make([]uint16, 0, newCap), c.k[i]...)
			c.v[i] = append(make([]uint16, 0, newCap), c.v[i]...)
		}
		c.k[i] = c.k[i][:need]
		c.v[i] = c.v[i][:need]
	}
	return nil
}

// store writes the keys and values of position pos of layer l.
func (c *KVCache) store(l, pos int, k, v []float32) {
	kd := c.k[l][pos*c.kvDim : (pos+1)*c.kvDim]
	vd := c.v[l][pos*c.kvDim : (pos+1)*c.kvDim]
	for i := range kd {
		kd[i] = gguf.Float32ToF16(k[i])
		vd[i] = gguf.Float32ToF16(v[i])
	}
}

// clone returns a copy of c holding the same positions.
func (c *KVCache) clone() *KVCache {
	d := &KVCache{k: make([][]uint16, len(c.k)), v: make([][]uint16, len(c.v)), kvDim: c.kvDim, n: c.n, ctx: c.ctx}
	for i := range c.k {
		d.k[i] = append([]uint16(nil), c.k[i]...)
		d.v[i] = append([]uint16(nil), c.v[i]...)
	}
	return d
}
