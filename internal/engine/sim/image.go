package sim

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"github.com/neovratz/neovratz/internal/inference"
)

// GenerateImage waits ImageStepTime per step, reporting each step, then draws each image: a
// gradient whose colours come from the prompt and seed, encoded as a real PNG of the requested
// size. A seed of -1 is replaced by one derived from the prompt, and reported.
func (e *Engine) GenerateImage(ctx context.Context, req inference.ImageRequest, progress func(inference.ImageProgress) error) (inference.ImageResult, error) {
	steps := req.Steps
	if steps <= 0 {
		steps = e.cfg.ImageSteps
	}
	n := max(req.N, 1)
	seed := req.Seed
	if seed < 0 {
		seed = int64(hash64(e.cfg.Seed, req.Prompt, req.NegativePrompt) >> 33)
	}
	var res inference.ImageResult
	for i := range n {
		for s := 1; s <= steps; s++ {
			if err := wait(ctx, e.cfg.ImageStepTime); err != nil {
				return inference.ImageResult{}, err
			}
			if err := progress(inference.ImageProgress{Index: i, Step: s, Steps: steps}); err != nil {
				return inference.ImageResult{}, err
			}
		}
		imgSeed := seed + int64(i)
		b, err := drawPNG(req.Width, req.Height, hash64(e.cfg.Seed, req.Prompt, fmt.Sprint(imgSeed)))
		if err != nil {
			return inference.ImageResult{}, err
		}
		res.Images = append(res.Images, inference.GeneratedImage{PNG: b, Seed: imgSeed})
	}
	return res, nil
}

func drawPNG(w, h int, seed uint64) ([]byte, error) {
	if w <= 0 || h <= 0 {
		return nil, &inference.BadRequestError{Param: "size", Reason: "width and height must be positive"}
	}
	r := newRand(seed)
	c1 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	c2 := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			t := float64(x+y) / float64(w+h)
			img.Pix[y*img.Stride+x*4+0] = mix(c1.R, c2.R, t)
			img.Pix[y*img.Stride+x*4+1] = mix(c1.G, c2.G, t)
			img.Pix[y*img.Stride+x*4+2] = mix(c1.B, c2.B, t)
			img.Pix[y*img.Stride+x*4+3] = 255
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mix(a, b uint8, t float64) uint8 {
	return uint8(math.Round(float64(a)*(1-t) + float64(b)*t))
}

// Embed returns, for each input, a unit vector of EmbeddingDim numbers derived from a hash of
// the input: equal inputs get equal embeddings, different inputs almost orthogonal ones.
func (e *Engine) Embed(ctx context.Context, req inference.EmbeddingRequest) (inference.EmbeddingResult, error) {
	res := inference.EmbeddingResult{Embeddings: make([][]float32, len(req.Input))}
	for i, in := range req.Input {
		if err := ctx.Err(); err != nil {
			return inference.EmbeddingResult{}, err
		}
		r := newRand(hash64(e.cfg.Seed, in))
		v := make([]float32, e.cfg.EmbeddingDim)
		var norm float64
		for j := range v {
			x := r.NormFloat64()
			v[j] = float32(x)
			norm += x * x
		}
		norm = math.Sqrt(norm)
		for j := range v {
			v[j] = float32(float64(v[j]) / norm)
		}
		res.Embeddings[i] = v
		res.Usage.PromptTokens += countTokens(in)
	}
	res.Usage.TotalTokens = res.Usage.PromptTokens
	return res, nil
}
