package unet

import (
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/kernels"
)

// Forward runs the model on a latent x (4 channels) at fractional
// timestep t with the text context (nCtx rows of ContextDim values) and
// returns its output (ε or v, as the model was trained).
func (u *UNet) Forward(x *nn.Map, t float32, context []float32, pool *kernels.Pool) (*nn.Map, error) {
	if x.C != latentC {
		return nil, fmt.Errorf("unet: latent has %d channels, want %d", x.C, latentC)
	}
	if u.contextDim == 0 || len(context) == 0 || len(context)%u.contextDim != 0 {
		return nil, fmt.Errorf("unet: context of %d values is not rows of %d", len(context), u.contextDim)
	}
	emb := make([]float32, u.timeEmb1.Out)
	u.timeEmb1.Forward(emb, timestepEmbedding(t, u.channels), 1, pool)
	nn.SiLU(emb, nil)
	emb2 := make([]float32, u.timeEmb2.Out)
	u.timeEmb2.Forward(emb2, emb, 1, pool)
	// Every resblock applies SiLU to the embedding first.
	nn.SiLU(emb2, nil)

	h := x
	var skips []*nn.Map
	for _, b := range u.input {
		h = u.run(b, h, emb2, context, pool)
		skips = append(skips, h)
	}
	h = u.run(u.middle, h, emb2, context, pool)
	for _, b := range u.output {
		s := skips[len(skips)-1]
		skips = skips[:len(skips)-1]
		if s.H != h.H || s.W != h.W {
			return nil, fmt.Errorf("unet: skip of %d×%d meets %d×%d (latent sides must divide by 8)", s.H, s.W, h.H, h.W)
		}
		h = u.run(b, nn.Concat(h, s, pool), emb2, context, pool)
	}
	h = copyMap(h)
	nn.GroupNorm(h, groups, u.outNorm, gnEps, pool)
	nn.SiLU(h.Data, pool)
	return u.outConv.Forward(h, pool), nil
}

func (u *UNet) run(b block, h *nn.Map, emb, context []float32, pool *kernels.Pool) *nn.Map {
	for _, l := range b {
		switch {
		case l.res != nil:
			h = l.res.forward(h, emb, pool)
		case l.tf != nil:
			h = l.tf.forward(h, context, pool)
		case l.conv != nil:
			h = l.conv.Forward(h, pool)
		case l.up != nil:
			h = l.up.Forward(nn.Upsample2x(h, pool), pool)
		}
	}
	return h
}

func copyMap(x *nn.Map) *nn.Map {
	return &nn.Map{C: x.C, H: x.H, W: x.W, Data: append([]float32(nil), x.Data...)}
}

func (r *resBlock) forward(x *nn.Map, emb []float32, pool *kernels.Pool) *nn.Map {
	h := copyMap(x)
	nn.GroupNorm(h, groups, r.inNorm, gnEps, pool)
	nn.SiLU(h.Data, pool)
	h = r.inConv.Forward(h, pool)
	e := make([]float32, r.emb.Out)
	r.emb.Forward(e, emb, 1, pool)
	for p := range h.H * h.W {
		nn.Add(h.Data[p*h.C:(p+1)*h.C], e, nil)
	}
	nn.GroupNorm(h, groups, r.outNorm, gnEps, pool)
	nn.SiLU(h.Data, pool)
	h = r.outConv.Forward(h, pool)
	if r.shortcut != nil {
		x = r.shortcut.Forward(x, pool)
	}
	nn.Add(h.Data, x.Data, pool)
	return h
}

func (t *transformer) forward(x *nn.Map, context []float32, pool *kernels.Pool) *nn.Map {
	n, c := x.H*x.W, x.C
	h := copyMap(x)
	nn.GroupNorm(h, groups, t.norm, gnEps, pool)
	cur := make([]float32, n*c)
	t.projIn.Forward(cur, h.Data, n, pool)
	nCtx := len(context) / t.blocks[0].k2.In
	tmp := make([]float32, n*c)
	q := make([]float32, n*c)
	k := make([]float32, max(n, nCtx)*c)
	v := make([]float32, max(n, nCtx)*c)
	att := make([]float32, n*c)
	scale := float32(1 / math.Sqrt(float64(c/t.heads)))
	for _, b := range t.blocks {
		// Self-attention.
		layerNorm(tmp, cur, b.norm1, c, pool)
		b.q1.Forward(q, tmp, n, pool)
		b.k1.Forward(k, tmp, n, pool)
		b.v1.Forward(v, tmp, n, pool)
		nn.Attention(att, q, k, v, n, n, t.heads, c/t.heads, scale, pool)
		b.o1.Forward(tmp, att, n, pool)
		nn.Add(cur, tmp, pool)
		// Cross-attention to the text.
		layerNorm(tmp, cur, b.norm2, c, pool)
		b.q2.Forward(q, tmp, n, pool)
		b.k2.Forward(k, context, nCtx, pool)
		b.v2.Forward(v, context, nCtx, pool)
		nn.Attention(att, q, k, v, n, nCtx, t.heads, c/t.heads, scale, pool)
		b.o2.Forward(tmp, att, n, pool)
		nn.Add(cur, tmp, pool)
		// GEGLU feed-forward: the first half times GELU of the second.
		layerNorm(tmp, cur, b.norm3, c, pool)
		inner := b.ff2.In
		ff := make([]float32, n*2*inner)
		b.ff1.Forward(ff, tmp, n, pool)
		gated := make([]float32, n*inner)
		pool.Run(n, 0, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				row := ff[p*2*inner : (p+1)*2*inner]
				gate := row[inner:]
				nn.GELU(gate)
				for i := range inner {
					gated[p*inner+i] = row[i] * gate[i]
				}
			}
		})
		b.ff2.Forward(tmp, gated, n, pool)
		nn.Add(cur, tmp, pool)
	}
	out := nn.NewMap(c, x.H, x.W)
	t.projOut.Forward(out.Data, cur, n, pool)
	nn.Add(out.Data, x.Data, pool)
	return out
}

// layerNorm normalizes rows of width c with eps 1e-5 (sums in float64).
func layerNorm(dst, x []float32, nm nn.Norm, c int, pool *kernels.Pool) {
	pool.Run(len(x)/c, 0, func(lo, hi int) {
		for r := lo * c; r < hi*c; r += c {
			layerNormRow(dst[r:r+c], x[r:r+c], nm)
		}
	})
}

func layerNormRow(dst, row []float32, nm nn.Norm) {
	c := len(row)
	var s float64
	for _, v := range row {
		s += float64(v)
	}
	mean := float32(s / float64(c))
	var sq float64
	for _, v := range row {
		d := v - mean
		sq += float64(d * d)
	}
	scale := float32(1 / math.Sqrt(sq/float64(c)+lnEps))
	for i, v := range row {
		dst[i] = (v-mean)*scale*nm.W[i] + nm.B[i]
	}
}
