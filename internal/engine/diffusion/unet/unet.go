// Package unet is the denoising UNet of Stable Diffusion 1.x and 2.x (the
// ldm UNetModel, model.diffusion_model.* in a checkpoint), on the nn
// layers. The block structure and channel counts are read from the tensor
// names and shapes, so any base width loads; attention heads follow the
// family (8 heads for SD 1.x, 64 channels per head for SD 2.x). Norms use
// stable-diffusion.cpp's constants: GroupNorm eps 1e-6, LayerNorm 1e-5.
package unet

import (
	"fmt"
	"math"
	"strconv"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/safetensors"
)

const (
	prefix  = "model.diffusion_model."
	groups  = 32
	gnEps   = 1e-6
	lnEps   = 1e-5
	latentC = 4
)

// Config says what the tensors cannot: how attention splits into heads.
type Config struct {
	// Heads is a fixed number of heads (SD 1.x: 8); 0 to use HeadDim.
	Heads int
	// HeadDim is the channels per head (SD 2.x: 64) when Heads is 0.
	HeadDim int
}

func (c Config) heads(ch int) int {
	if c.Heads > 0 {
		return c.Heads
	}
	return ch / c.HeadDim
}

// UNet is a loaded model.
type UNet struct {
	channels   int // base width
	timeEmb1   nn.Linear
	timeEmb2   nn.Linear
	input      []block
	middle     []layer
	output     []block
	outNorm    nn.Norm
	outConv    nn.Conv2D
	contextDim int
}

// block is one input or output block: layers run in order.
type block []layer

// layer is one of a resblock, a transformer, a convolution (the input
// convolution, or a stride-2 downsample) or an upsample (nearest ×2, then
// its convolution); exactly one field is set.
type layer struct {
	res  *resBlock
	tf   *transformer
	conv *nn.Conv2D
	up   *nn.Conv2D
}

type resBlock struct {
	inNorm   nn.Norm
	inConv   nn.Conv2D
	emb      nn.Linear
	outNorm  nn.Norm
	outConv  nn.Conv2D
	shortcut *nn.Conv2D
}

type transformer struct {
	norm            nn.Norm
	projIn, projOut nn.Linear // 1×1 convolutions are linear layers here
	blocks          []tblock
	heads           int
}

type tblock struct {
	norm1, norm2, norm3 nn.Norm
	q1, k1, v1, o1      nn.Linear
	q2, k2, v2, o2      nn.Linear
	ff1, ff2            nn.Linear
}

// Load reads the UNet from a checkpoint.
func Load(f *safetensors.File, cfg Config) (*UNet, error) {
	ws := &nn.Weights{F: f}
	in := ws.Shape(prefix + "input_blocks.0.0.weight")
	if len(in) != 4 {
		return nil, fmt.Errorf("unet: %sinput_blocks.0.0.weight missing", prefix)
	}
	mc := in[0]
	u := &UNet{channels: mc}
	te := ws.Shape(prefix + "time_embed.0.weight")
	if len(te) != 2 {
		return nil, fmt.Errorf("unet: time_embed missing")
	}
	u.timeEmb1 = ws.Linear(prefix+"time_embed.0", te[0], mc, true)
	u.timeEmb2 = ws.Linear(prefix+"time_embed.2", te[0], te[0], true)
	embDim := te[0]

	ch := mc
	var skips []int
	for i := 0; ; i++ {
		p := prefix + "input_blocks." + strconv.Itoa(i)
		if ws.Shape(p+".0.weight") == nil && ws.Shape(p+".0.in_layers.2.weight") == nil && ws.Shape(p+".0.op.weight") == nil {
			break
		}
		var b block
		switch {
		case i == 0:
			c := ws.Conv(p+".0", mc, latentC, 3)
			b = block{{conv: &c}}
		case ws.Shape(p+".0.op.weight") != nil:
			c := ws.Conv(p+".0.op", ch, ch, 3)
			c.Stride = 2
			b = block{{conv: &c}}
		default:
			var r *resBlock
			r, ch = loadRes(ws, p+".0", ch, embDim)
			b = block{{res: r}}
			if ws.Shape(p+".1.norm.weight") != nil {
				b = append(b, layer{tf: loadTransformer(ws, p+".1", ch, cfg, &u.contextDim)})
			}
		}
		u.input = append(u.input, b)
		skips = append(skips, ch)
	}
	mp := prefix + "middle_block."
	r1, _ := loadRes(ws, mp+"0", ch, embDim)
	r2, _ := loadRes(ws, mp+"2", ch, embDim)
	u.middle = []layer{{res: r1}, {tf: loadTransformer(ws, mp+"1", ch, cfg, &u.contextDim)}, {res: r2}}
	for i := 0; ; i++ {
		p := prefix + "output_blocks." + strconv.Itoa(i)
		if ws.Shape(p+".0.in_layers.2.weight") == nil {
			break
		}
		if len(skips) == 0 {
			return nil, fmt.Errorf("unet: more output blocks than skip connections")
		}
		skip := skips[len(skips)-1]
		skips = skips[:len(skips)-1]
		var r *resBlock
		r, ch = loadRes(ws, p+".0", ch+skip, embDim)
		b := block{{res: r}}
		for j := 1; j <= 2; j++ {
			q := p + "." + strconv.Itoa(j)
			switch {
			case ws.Shape(q+".norm.weight") != nil:
				b = append(b, layer{tf: loadTransformer(ws, q, ch, cfg, &u.contextDim)})
			case ws.Shape(q+".conv.weight") != nil:
				c := ws.Conv(q+".conv", ch, ch, 3)
				b = append(b, layer{up: &c})
			}
		}
		u.output = append(u.output, b)
	}
	u.outNorm = ws.Norm(prefix+"out.0", ch)
	u.outConv = ws.Conv(prefix+"out.2", latentC, ch, 3)
	if ws.Err != nil {
		return nil, fmt.Errorf("unet: %w", ws.Err)
	}
	if len(skips) != 0 {
		return nil, fmt.Errorf("unet: %d skip connections unused", len(skips))
	}
	return u, nil
}

func loadRes(ws *nn.Weights, p string, in, embDim int) (*resBlock, int) {
	s := ws.Shape(p + ".in_layers.2.weight")
	out := in
	if len(s) == 4 {
		out = s[0]
	}
	r := &resBlock{
		inNorm: ws.Norm(p+".in_layers.0", in), inConv: ws.Conv(p+".in_layers.2", out, in, 3),
		emb:     ws.Linear(p+".emb_layers.1", out, embDim, true),
		outNorm: ws.Norm(p+".out_layers.0", out), outConv: ws.Conv(p+".out_layers.3", out, out, 3),
	}
	if in != out {
		c := ws.Conv(p+".skip_connection", out, in, 1)
		r.shortcut = &c
	}
	return r, out
}

// proj reads a projection stored as a 1×1 convolution (SD 1.x) or a linear
// layer (SD 2.x) as a Linear.
func proj(ws *nn.Weights, p string, out, in int) nn.Linear {
	if len(ws.Shape(p+".weight")) == 4 {
		return ws.Conv(p, out, in, 1).Linear
	}
	return ws.Linear(p, out, in, true)
}

func loadTransformer(ws *nn.Weights, p string, ch int, cfg Config, contextDim *int) *transformer {
	t := &transformer{norm: ws.Norm(p+".norm", ch), heads: cfg.heads(ch)}
	t.projIn = proj(ws, p+".proj_in", ch, ch)
	t.projOut = proj(ws, p+".proj_out", ch, ch)
	for i := 0; ; i++ {
		q := p + ".transformer_blocks." + strconv.Itoa(i) + "."
		k2 := ws.Shape(q + "attn2.to_k.weight")
		if k2 == nil {
			break
		}
		if len(k2) == 2 {
			*contextDim = k2[1]
		}
		ff := ws.Shape(q + "ff.net.0.proj.weight")
		inner := 4 * ch
		if len(ff) == 2 {
			inner = ff[0] / 2
		}
		t.blocks = append(t.blocks, tblock{
			norm1: ws.Norm(q+"norm1", ch), norm2: ws.Norm(q+"norm2", ch), norm3: ws.Norm(q+"norm3", ch),
			q1: ws.Linear(q+"attn1.to_q", ch, ch, false), k1: ws.Linear(q+"attn1.to_k", ch, ch, false),
			v1: ws.Linear(q+"attn1.to_v", ch, ch, false), o1: ws.Linear(q+"attn1.to_out.0", ch, ch, true),
			q2: ws.Linear(q+"attn2.to_q", ch, ch, false), k2: ws.Linear(q+"attn2.to_k", ch, *contextDim, false),
			v2: ws.Linear(q+"attn2.to_v", ch, *contextDim, false), o2: ws.Linear(q+"attn2.to_out.0", ch, ch, true),
			ff1: ws.Linear(q+"ff.net.0.proj", 2*inner, ch, true), ff2: ws.Linear(q+"ff.net.2", ch, inner, true),
		})
	}
	return t
}

// ContextDim is the cross-attention context width the model expects.
func (u *UNet) ContextDim() int { return u.contextDim }

// timestepEmbedding is ggml_timestep_embedding: cos of t·f_i for the first
// half, sin for the second, f_i = exp(-ln(10000)·i/half), in float32.
func timestepEmbedding(t float32, dim int) []float32 {
	half := dim / 2
	out := make([]float32, dim)
	for i := range half {
		freq := float32(math.Exp(float64(-float32(math.Log(10000)) * float32(i) / float32(half))))
		arg := t * freq
		out[i] = float32(math.Cos(float64(arg)))
		out[i+half] = float32(math.Sin(float64(arg)))
	}
	return out
}
