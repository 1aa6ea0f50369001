// Package vae is Stable Diffusion's VAE decoder (the ldm AutoencoderKL of
// SD 1.x and 2.x, first_stage_model.* in a checkpoint): latents to RGB.
// It follows stable-diffusion.cpp's decoder: GroupNorm with 32 groups and
// eps 1e-6, SiLU, single-head attention in the middle, nearest upsampling.
package vae

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/kernels"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// ScaleFactor is the latent scaling of SD 1.x and 2.x: the UNet works on
// latents multiplied by it.
const ScaleFactor = 0.18215

const (
	prefix = "first_stage_model."
	groups = 32
	eps    = 1e-6
)

// Decoder is a loaded VAE decoder.
type Decoder struct {
	postQuant nn.Conv2D
	convIn    nn.Conv2D
	mid1      resnet
	attn      attention
	mid2      resnet
	levels    []level // from the deepest (first run) to the shallowest
	normOut   nn.Norm
	convOut   nn.Conv2D
}

type level struct {
	blocks   []resnet
	upsample *nn.Conv2D
}

type resnet struct {
	norm1, norm2 nn.Norm
	conv1, conv2 nn.Conv2D
	shortcut     *nn.Conv2D
}

type attention struct {
	norm          nn.Norm
	q, k, v, proj nn.Conv2D
}

// Load reads the decoder from a checkpoint, taking the channel counts from
// the tensors' shapes.
func Load(f *safetensors.File) (*Decoder, error) {
	ws := &nn.Weights{F: f}
	p := prefix + "decoder."
	in := ws.Shape(p + "conv_in.weight")
	if len(in) != 4 {
		return nil, fmt.Errorf("vae: no decoder (%sconv_in.weight missing)", p)
	}
	z, ch := in[1], in[0]
	d := &Decoder{
		postQuant: ws.Conv(prefix+"post_quant_conv", z, z, 1),
		convIn:    ws.Conv(p+"conv_in", ch, z, 3),
	}
	d.mid1 = loadResnet(ws, p+"mid.block_1", ch, ch)
	d.attn = attention{
		norm: ws.Norm(p+"mid.attn_1.norm", ch),
		q:    ws.Conv(p+"mid.attn_1.q", ch, ch, 1), k: ws.Conv(p+"mid.attn_1.k", ch, ch, 1),
		v: ws.Conv(p+"mid.attn_1.v", ch, ch, 1), proj: ws.Conv(p+"mid.attn_1.proj_out", ch, ch, 1),
	}
	d.mid2 = loadResnet(ws, p+"mid.block_2", ch, ch)
	nLevels := 0
	for ws.Shape(p+"up."+strconv.Itoa(nLevels)+".block.0.conv1.weight") != nil {
		nLevels++
	}
	if nLevels == 0 {
		return nil, fmt.Errorf("vae: decoder has no up blocks")
	}
	for i := nLevels - 1; i >= 0; i-- {
		var lv level
		for j := 0; ; j++ {
			bp := p + "up." + strconv.Itoa(i) + ".block." + strconv.Itoa(j)
			s := ws.Shape(bp + ".conv1.weight")
			if s == nil {
				break
			}
			lv.blocks = append(lv.blocks, loadResnet(ws, bp, ch, s[0]))
			ch = s[0]
		}
		if i != 0 {
			c := ws.Conv(p+"up."+strconv.Itoa(i)+".upsample.conv", ch, ch, 3)
			lv.upsample = &c
		}
		d.levels = append(d.levels, lv)
	}
	d.normOut = ws.Norm(p+"norm_out", ch)
	d.convOut = ws.Conv(p+"conv_out", 3, ch, 3)
	if ws.Err != nil {
		return nil, fmt.Errorf("vae: %w", ws.Err)
	}
	if ch%groups != 0 {
		return nil, fmt.Errorf("vae: %d channels do not split into %d groups", ch, groups)
	}
	return d, nil
}

func loadResnet(ws *nn.Weights, p string, in, out int) resnet {
	r := resnet{
		norm1: ws.Norm(p+".norm1", in), conv1: ws.Conv(p+".conv1", out, in, 3),
		norm2: ws.Norm(p+".norm2", out), conv2: ws.Conv(p+".conv2", out, out, 3),
	}
	if in != out {
		c := ws.Conv(p+".nin_shortcut", out, in, 1)
		r.shortcut = &c
	}
	return r
}

// Decode turns a latent (as the sampler leaves it, scaled by ScaleFactor)
// into an image map of 3 channels in about [-1, 1], 8× the size.
func (d *Decoder) Decode(latent *nn.Map, pool *kernels.Pool) *nn.Map {
	z := &nn.Map{C: latent.C, H: latent.H, W: latent.W, Data: make([]float32, len(latent.Data))}
	for i, v := range latent.Data {
		z.Data[i] = v / ScaleFactor
	}
	h := d.postQuant.Forward(z, pool)
	h = d.convIn.Forward(h, pool)
	h = d.mid1.forward(h, pool)
	h = d.attn.forward(h, pool)
	h = d.mid2.forward(h, pool)
	for _, lv := range d.levels {
		for i := range lv.blocks {
			h = lv.blocks[i].forward(h, pool)
		}
		if lv.upsample != nil {
			h = lv.upsample.Forward(nn.Upsample2x(h, pool), pool)
		}
	}
	nn.GroupNorm(h, groups, d.normOut, eps, pool)
	nn.SiLU(h.Data, pool)
	return d.convOut.Forward(h, pool)
}

func (r *resnet) forward(x *nn.Map, pool *kernels.Pool) *nn.Map {
	h := &nn.Map{C: x.C, H: x.H, W: x.W, Data: append([]float32(nil), x.Data...)}
	nn.GroupNorm(h, groups, r.norm1, eps, pool)
	nn.SiLU(h.Data, pool)
	h = r.conv1.Forward(h, pool)
	nn.GroupNorm(h, groups, r.norm2, eps, pool)
	nn.SiLU(h.Data, pool)
	h = r.conv2.Forward(h, pool)
	if r.shortcut != nil {
		x = r.shortcut.Forward(x, pool)
	}
	nn.Add(h.Data, x.Data, pool)
	return h
}

func (a *attention) forward(x *nn.Map, pool *kernels.Pool) *nn.Map {
	h := &nn.Map{C: x.C, H: x.H, W: x.W, Data: append([]float32(nil), x.Data...)}
	nn.GroupNorm(h, groups, a.norm, eps, pool)
	q, k, v := a.q.Forward(h, pool), a.k.Forward(h, pool), a.v.Forward(h, pool)
	n := x.H * x.W
	out := nn.NewMap(x.C, x.H, x.W)
	nn.Attention(out.Data, q.Data, k.Data, v.Data, n, n, 1, x.C, float32(1/math.Sqrt(float64(x.C))), pool)
	out = a.proj.Forward(out, pool)
	nn.Add(out.Data, x.Data, pool)
	return out
}

// Image converts a decoded map to 8-bit RGB: (x+1)/2 clamped to [0, 1],
// times 255, truncated as stable-diffusion.cpp converts it.
func Image(m *nn.Map) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	conv := func(v float32) uint8 {
		v = (v + 1) / 2
		v = min(max(v, 0), 1)
		return uint8(v * 255)
	}
	for y := range m.H {
		for x := range m.W {
			px := m.Data[(y*m.W+x)*m.C:]
			img.SetRGBA(x, y, color.RGBA{R: conv(px[0]), G: conv(px[1]), B: conv(px[2]), A: 255})
		}
	}
	return img
}
