package imageup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// imagesRequest is the body of POST /v1/images/generations, with the Stable Diffusion extensions
// that LocalAI and neovratz accept (others ignore them).
type imagesRequest struct {
	Model          string  `json:"model"`
	Prompt         string  `json:"prompt"`
	N              int     `json:"n"`
	Size           string  `json:"size"`
	ResponseFormat string  `json:"response_format"`
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	Steps          int     `json:"steps,omitempty"`
	CFGScale       float64 `json:"cfg_scale,omitempty"`
	Seed           *int64  `json:"seed,omitempty"`
	Sampler        string  `json:"sampler,omitempty"`
}

func (e *Engine) openaiImages(ctx context.Context, req inference.ImageRequest) (inference.ImageResult, error) {
	model := e.cfg.Model
	if model == "" {
		model = req.Model
	}
	body := imagesRequest{Model: model, Prompt: req.Prompt, N: max(req.N, 1), Size: fmt.Sprintf("%dx%d", req.Width, req.Height),
		ResponseFormat: "b64_json", NegativePrompt: req.NegativePrompt, Steps: req.Steps, CFGScale: req.CFGScale, Sampler: req.Sampler}
	if req.Seed >= 0 {
		body.Seed = &req.Seed
	}
	resp, err := e.do(ctx, http.MethodPost, "/images/generations", body)
	if err != nil {
		return inference.ImageResult{}, err
	}
	defer resp.Body.Close()
	var out openai.ImagesResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return inference.ImageResult{}, fmt.Errorf("read images answer: %w", err)
	}
	if len(out.Data) != body.N {
		return inference.ImageResult{}, worker.Retryablef("image upstream sent %d images, want %d", len(out.Data), body.N)
	}
	res := inference.ImageResult{Images: make([]inference.GeneratedImage, len(out.Data))}
	for i, d := range out.Data {
		if d.B64JSON == "" {
			return inference.ImageResult{}, fmt.Errorf("image upstream sent image %d without b64_json", i)
		}
		png, err := decodeImage(d.B64JSON)
		if err != nil {
			return inference.ImageResult{}, err
		}
		// The API reports no seed: the requested one, or -1 for unknown.
		res.Images[i] = inference.GeneratedImage{PNG: png, Seed: req.Seed}
	}
	return res, nil
}
