package clip

import (
	"fmt"
	"strconv"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// Encoder is a CLIP text transformer read from a Stable Diffusion
// checkpoint: OpenAI's ViT-L/14 of SD 1.x (Hugging Face naming under
// cond_stage_model.transformer.text_model) or OpenCLIP's ViT-H/14 of SD 2.x
// (cond_stage_model.model, fused attention projections). Weights stay in
// the checkpoint's mapping; products run on the kernels package, which
// rounds activations to F16 before F16-weight products as ggml does.
type Encoder struct {
	// Width is the model width (768 for ViT-L, 1024 for ViT-H).
	Width int
	// Heads is the number of attention heads (64 channels each).
	Heads int
	// Positions is the context length the position embedding covers.
	Positions int
	// OpenCLIP is set for SD 2.x's encoder, which uses GELU where
	// ViT-L uses quick GELU, and penultimate-layer output by default.
	OpenCLIP bool

	tokEmb  *safetensors.Tensor
	posEmb  []float32
	layers  []layer
	finalLN norm
}

type layer struct {
	ln1, ln2     norm
	q, k, v, out linear
	fc1, fc2     linear
}

type norm struct{ w, b []float32 }

// linear is y = W·x + b with W of rows×cols in the checkpoint's type.
type linear struct {
	w          []byte
	wt         gguf.Type
	rows, cols int
	b          []float32
}

// Layers is the number of transformer blocks.
func (e *Encoder) Layers() int { return len(e.layers) }

// DefaultClipSkip is the clip skip stable-diffusion.cpp uses when none is
// given: 1 (the last block) for SD 1.x, 2 (the penultimate) for SD 2.x.
func (e *Encoder) DefaultClipSkip() int {
	if e.OpenCLIP {
		return 2
	}
	return 1
}

// LoadEncoder finds the text encoder in a checkpoint.
func LoadEncoder(f *safetensors.File) (*Encoder, error) {
	if _, ok := f.Tensor(sd1Prefix + "embeddings.token_embedding.weight"); ok {
		return loadSD1(f)
	}
	if _, ok := f.Tensor(sd2Prefix + "token_embedding.weight"); ok {
		return loadSD2(f)
	}
	return nil, fmt.Errorf("clip: no CLIP text encoder found (neither %s nor %s tensors)", sd1Prefix, sd2Prefix)
}

const (
	sd1Prefix = "cond_stage_model.transformer.text_model."
	sd2Prefix = "cond_stage_model.model."
)

// loader reads tensors, remembering the first error.
type loader struct {
	f   *safetensors.File
	err error
}

func (l *loader) tensor(name string, shape ...int) *safetensors.Tensor {
	if l.err != nil {
		return nil
	}
	t, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("clip: tensor %s missing", name)
		return nil
	}
	if len(t.Shape) != len(shape) {
		l.err = fmt.Errorf("clip: tensor %s has shape %v, want %v", name, t.Shape, shape)
		return nil
	}
	for i, d := range shape {
		if d >= 0 && t.Shape[i] != d {
			l.err = fmt.Errorf("clip: tensor %s has shape %v, want %v", name, t.Shape, shape)
			return nil
		}
	}
	return t
}

func (l *loader) floats(name string, shape ...int) []float32 {
	t := l.tensor(name, shape...)
	if t == nil {
		return nil
	}
	return nn.Float32s(t.DType, t.Data)
}

func (l *loader) norm(prefix string, d int) norm {
	return norm{w: l.floats(prefix+".weight", d), b: l.floats(prefix+".bias", d)}
}

func (l *loader) linear(prefix string, rows, cols int) linear {
	t := l.tensor(prefix+".weight", rows, cols)
	b := l.floats(prefix+".bias", rows)
	if t == nil {
		return linear{}
	}
	return linear{w: t.Data, wt: nn.Type(t.DType), rows: rows, cols: cols, b: b}
}

func loadSD1(f *safetensors.File) (*Encoder, error) {
	l := &loader{f: f}
	tok := l.tensor(sd1Prefix+"embeddings.token_embedding.weight", -1, -1)
	if tok == nil {
		return nil, l.err
	}
	d := tok.Shape[1]
	e := &Encoder{Width: d, Heads: d / 64, tokEmb: tok}
	pos := l.tensor(sd1Prefix+"embeddings.position_embedding.weight", -1, d)
	if pos != nil {
		e.Positions = pos.Shape[0]
		e.posEmb = nn.Float32s(pos.DType, pos.Data)
	}
	for i := 0; ; i++ {
		p := sd1Prefix + "encoder.layers." + strconv.Itoa(i) + "."
		if _, ok := f.Tensor(p + "layer_norm1.weight"); !ok {
			break
		}
		fc1, _ := f.Tensor(p + "mlp.fc1.weight")
		ff := 4 * d
		if fc1 != nil && len(fc1.Shape) == 2 {
			ff = fc1.Shape[0]
		}
		e.layers = append(e.layers, layer{
			ln1: l.norm(p+"layer_norm1", d), ln2: l.norm(p+"layer_norm2", d),
			q: l.linear(p+"self_attn.q_proj", d, d), k: l.linear(p+"self_attn.k_proj", d, d),
			v: l.linear(p+"self_attn.v_proj", d, d), out: l.linear(p+"self_attn.out_proj", d, d),
			fc1: l.linear(p+"mlp.fc1", ff, d), fc2: l.linear(p+"mlp.fc2", d, ff),
		})
	}
	e.finalLN = l.norm(sd1Prefix+"final_layer_norm", d)
	return e.check(l.err)
}

func loadSD2(f *safetensors.File) (*Encoder, error) {
	l := &loader{f: f}
	tok := l.tensor(sd2Prefix+"token_embedding.weight", -1, -1)
	if tok == nil {
		return nil, l.err
	}
	d := tok.Shape[1]
	e := &Encoder{Width: d, Heads: d / 64, tokEmb: tok, OpenCLIP: true}
	pos := l.tensor(sd2Prefix+"positional_embedding", -1, d)
	if pos != nil {
		e.Positions = pos.Shape[0]
		e.posEmb = nn.Float32s(pos.DType, pos.Data)
	}
	for i := 0; ; i++ {
		p := sd2Prefix + "transformer.resblocks." + strconv.Itoa(i) + "."
		if _, ok := f.Tensor(p + "ln_1.weight"); !ok {
			break
		}
		fc, _ := f.Tensor(p + "mlp.c_fc.weight")
		ff := 4 * d
		if fc != nil && len(fc.Shape) == 2 {
			ff = fc.Shape[0]
		}
		// One fused projection holds q, k and v one after another.
		var in linear
		w := l.tensor(p+"attn.in_proj_weight", 3*d, d)
		b := l.floats(p+"attn.in_proj_bias", 3*d)
		if w != nil {
			in = linear{w: w.Data, wt: nn.Type(w.DType), rows: 3 * d, cols: d, b: b}
		}
		q, k, v := in.split3()
		e.layers = append(e.layers, layer{
			ln1: l.norm(p+"ln_1", d), ln2: l.norm(p+"ln_2", d),
			q: q, k: k, v: v, out: l.linear(p+"attn.out_proj", d, d),
			fc1: l.linear(p+"mlp.c_fc", ff, d), fc2: l.linear(p+"mlp.c_proj", d, ff),
		})
	}
	e.finalLN = l.norm(sd2Prefix+"ln_final", d)
	return e.check(l.err)
}

func (e *Encoder) check(err error) (*Encoder, error) {
	if err != nil {
		return nil, err
	}
	if len(e.layers) == 0 {
		return nil, fmt.Errorf("clip: text encoder has no layers")
	}
	if e.Width%64 != 0 || e.Width == 0 {
		return nil, fmt.Errorf("clip: width %d is not a multiple of 64", e.Width)
	}
	if !kernels.Supported(e.layers[0].q.wt) {
		return nil, fmt.Errorf("clip: weight type %v not supported", e.layers[0].q.wt)
	}
	return e, nil
}

// split3 splits a fused [3d, d] projection into its three [d, d] parts.
func (l linear) split3() (a, b, c linear) {
	d := l.rows / 3
	rb := len(l.w) / 3
	part := func(i int) linear {
		p := linear{w: l.w[i*rb : (i+1)*rb], wt: l.wt, rows: d, cols: l.cols}
		if l.b != nil {
			p.b = l.b[i*d : (i+1)*d]
		}
		return p
	}
	return part(0), part(1), part(2)
}
