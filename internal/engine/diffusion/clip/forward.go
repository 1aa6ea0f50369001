package clip

import (
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/engine/diffusion/nn"
	"github.com/neovratz/neovratz/internal/kernels"
)

// Encode runs one chunk of token ids (up to Positions of them, normally 77)
// through the encoder and returns its hidden states, len(ids)×Width values,
// token-major. clipSkip picks the block whose output is taken: 1 is the
// last, 2 the penultimate (0 means DefaultClipSkip); the final layer norm
// follows, as stable-diffusion.cpp applies it for SD 1.x and 2.x alike.
func (e *Encoder) Encode(ids []int, clipSkip int, pool *kernels.Pool) ([]float32, error) {
	n, d := len(ids), e.Width
	if n == 0 || n > e.Positions {
		return nil, fmt.Errorf("clip: %d tokens, want 1 to %d", n, e.Positions)
	}
	if clipSkip <= 0 {
		clipSkip = e.DefaultClipSkip()
	}
	if clipSkip > len(e.layers) {
		return nil, fmt.Errorf("clip: clip skip %d exceeds the %d layers", clipSkip, len(e.layers))
	}
	vocab := e.tokEmb.Shape[0]
	x := make([]float32, n*d)
	rowBytes := d * e.tokEmb.DType.Size()
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return nil, fmt.Errorf("clip: token id %d outside the %d-token vocabulary", id, vocab)
		}
		row := nn.Float32s(e.tokEmb.DType, e.tokEmb.Data[id*rowBytes:(id+1)*rowBytes])
		for j := range d {
			x[i*d+j] = row[j] + e.posEmb[i*d+j]
		}
	}
	s := newScratch(n, d, e.layers[0].fc1.rows)
	for _, l := range e.layers[:len(e.layers)-clipSkip+1] {
		e.block(&l, x, s, pool)
	}
	layerNorm(x, x, e.finalLN.w, e.finalLN.b)
	return x, nil
}

// scratch holds one forward pass's buffers.
type scratch struct {
	h, q, k, v, att, ff []float32
	acts                []byte
	scores              []float32
}

func newScratch(n, d, ff int) *scratch {
	return &scratch{
		h: make([]float32, n*d), q: make([]float32, n*d), k: make([]float32, n*d),
		v: make([]float32, n*d), att: make([]float32, n*d), ff: make([]float32, n*ff),
		scores: make([]float32, n),
	}
}

// block is one pre-norm transformer block: causal self-attention, then
// the MLP, each added back to x.
func (e *Encoder) block(l *layer, x []float32, s *scratch, pool *kernels.Pool) {
	n, d := len(x)/e.Width, e.Width
	layerNorm(s.h, x, l.ln1.w, l.ln1.b)
	s.forward(s.q, &l.q, s.h, n, pool)
	s.forward(s.k, &l.k, s.h, n, pool)
	s.forward(s.v, &l.v, s.h, n, pool)
	hd := d / e.Heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	for h := range e.Heads {
		for i := range n {
			q := s.q[i*d+h*hd : i*d+(h+1)*hd]
			// Causal: token i sees tokens 0..i only.
			sc := s.scores[:i+1]
			for j := range sc {
				sc[j] = kernels.Dot(q, s.k[j*d+h*hd:j*d+(h+1)*hd]) * scale
			}
			kernels.Softmax(sc)
			out := s.att[i*d+h*hd : i*d+(h+1)*hd]
			clear(out)
			for j, p := range sc {
				kernels.Axpy(p, s.v[j*d+h*hd:j*d+(h+1)*hd], out)
			}
		}
	}
	s.forward(s.h, &l.out, s.att, n, pool)
	addTo(x, s.h)
	layerNorm(s.h, x, l.ln2.w, l.ln2.b)
	s.forward(s.ff, &l.fc1, s.h, n, pool)
	if e.OpenCLIP {
		nn.GELU(s.ff)
	} else {
		nn.QuickGELU(s.ff)
	}
	s.forward(s.h, &l.fc2, s.ff, n, pool)
	addTo(x, s.h)
}

// forward computes dst = x·Wᵀ + b for n rows of x.
func (s *scratch) forward(dst []float32, l *linear, x []float32, n int, pool *kernels.Pool) {
	at := kernels.ActivationType(l.wt)
	need := n * kernels.RowBytes(at, l.cols)
	if cap(s.acts) < need {
		s.acts = make([]byte, need)
	}
	acts := s.acts[:need]
	kernels.QuantizeActivations(l.wt, x[:n*l.cols], acts)
	kernels.MatMul(dst[:n*l.rows], l.w, l.wt, l.rows, l.cols, acts, n, pool)
	if l.b != nil {
		for r := range n {
			addTo(dst[r*l.rows:(r+1)*l.rows], l.b)
		}
	}
}

func addTo(dst, x []float32) {
	for i, v := range x {
		dst[i] += v
	}
}
