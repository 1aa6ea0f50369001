package clip

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/kernels"
)

// Condition encodes every chunk of a tokenized prompt and joins their
// hidden states, Chunks()×77 rows of Width values: the UNet's cross-
// attention context. Emphasis is applied per chunk as stable-diffusion.cpp
// and AUTOMATIC1111 do: each token's row is scaled by its weight, then the
// whole chunk by the ratio of its mean before to its mean after, so that
// emphasis shifts attention without changing the overall magnitude.
func (e *Encoder) Condition(t Tokens, clipSkip int, pool *kernels.Pool) ([]float32, error) {
	if len(t.IDs) == 0 || len(t.IDs)%Context != 0 || len(t.Weights) != len(t.IDs) {
		return nil, fmt.Errorf("clip: %d ids and %d weights are not whole %d-token chunks", len(t.IDs), len(t.Weights), Context)
	}
	var out []float32
	for c := 0; c < len(t.IDs); c += Context {
		h, err := e.Encode(t.IDs[c:c+Context], clipSkip, pool)
		if err != nil {
			return nil, err
		}
		applyWeights(h, t.Weights[c:c+Context], e.Width)
		out = append(out, h...)
	}
	return out, nil
}

// applyWeights scales token rows of h by weights, keeping h's mean.
func applyWeights(h []float32, weights []float32, d int) {
	allOne := true
	for _, w := range weights {
		allOne = allOne && w == 1
	}
	if allOne {
		return
	}
	before := mean(h)
	for i, w := range weights {
		row := h[i*d : (i+1)*d]
		for j := range row {
			row[j] *= w
		}
	}
	after := mean(h)
	if after == 0 {
		return
	}
	r := before / after
	for i := range h {
		h[i] *= r
	}
}

func mean(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s / float64(len(x)))
}
