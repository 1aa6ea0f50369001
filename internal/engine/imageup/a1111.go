package imageup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/worker"
)

// txt2imgRequest is the body of A1111's POST /sdapi/v1/txt2img (the fields neovratz sets).
type txt2imgRequest struct {
	Prompt           string            `json:"prompt"`
	NegativePrompt   string            `json:"negative_prompt,omitempty"`
	Width            int               `json:"width"`
	Height           int               `json:"height"`
	Steps            int               `json:"steps,omitempty"`
	CFGScale         float64           `json:"cfg_scale,omitempty"`
	Seed             int64             `json:"seed"`
	SamplerName      string            `json:"sampler_name,omitempty"`
	BatchSize        int               `json:"batch_size"`
	NIter            int               `json:"n_iter"`
	SendImages       bool              `json:"send_images"`
	SaveImages       bool              `json:"save_images"`
	DoNotSaveGrid    bool              `json:"do_not_save_grid"`
	OverrideSettings map[string]string `json:"override_settings,omitempty"`
}

// txt2imgResponse is its answer. Info is a JSON document inside a string.
type txt2imgResponse struct {
	Images []string `json:"images"`
	Info   string   `json:"info"`
}

type txt2imgInfo struct {
	Seed     int64   `json:"seed"`
	AllSeeds []int64 `json:"all_seeds"`
}

// progressResponse is A1111's GET /sdapi/v1/progress.
type progressResponse struct {
	Progress float64 `json:"progress"`
	State    struct {
		JobNo         int  `json:"job_no"`
		SamplingStep  int  `json:"sampling_step"`
		SamplingSteps int  `json:"sampling_steps"`
		Interrupted   bool `json:"interrupted"`
	} `json:"state"`
}

func (e *Engine) a1111(ctx context.Context, req inference.ImageRequest, progress func(inference.ImageProgress) error) (inference.ImageResult, error) {
	body := txt2imgRequest{Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, Width: req.Width, Height: req.Height,
		Steps: req.Steps, CFGScale: req.CFGScale, Seed: req.Seed, SamplerName: req.Sampler, BatchSize: max(req.N, 1), NIter: 1,
		SendImages: true, DoNotSaveGrid: true}
	if e.cfg.Model != "" {
		body.OverrideSettings = map[string]string{"sd_model_checkpoint": e.cfg.Model}
	}

	// Poll progress while the request runs; its first error (from the worker's progress
	// callback) ends the generation.
	pctx, stopPolling := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.pollProgress(pctx, stopPolling, progress) })
	resp, err := e.do(pctx, http.MethodPost, "/sdapi/v1/txt2img", body)
	if err == nil {
		defer resp.Body.Close()
	}
	cause := context.Cause(pctx)
	stopPolling(nil)
	wg.Wait()
	if ctx.Err() == nil && cause != nil {
		err = cause // the progress callback failed: the job is canceled or lost
	}
	if err != nil {
		if ctx.Err() != nil || cause != nil {
			e.interrupt()
		}
		return inference.ImageResult{}, err
	}

	var out txt2imgResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return inference.ImageResult{}, fmt.Errorf("read txt2img answer: %w", err)
	}
	n := max(req.N, 1)
	if len(out.Images) == n+1 {
		out.Images = out.Images[1:] // a grid of the batch came first despite do_not_save_grid
	}
	if len(out.Images) != n {
		return inference.ImageResult{}, worker.Retryablef("a1111 sent %d images, want %d", len(out.Images), n)
	}
	var info txt2imgInfo
	_ = json.Unmarshal([]byte(out.Info), &info) // the seeds are a nicety
	res := inference.ImageResult{Images: make([]inference.GeneratedImage, n)}
	for i, s := range out.Images {
		png, err := decodeImage(s)
		if err != nil {
			return inference.ImageResult{}, err
		}
		seed := req.Seed
		switch {
		case i < len(info.AllSeeds):
			seed = info.AllSeeds[i]
		case info.Seed != 0 || req.Seed < 0:
			seed = info.Seed + int64(i)
		}
		res.Images[i] = inference.GeneratedImage{PNG: png, Seed: seed}
	}
	if progress != nil && len(res.Images) > 0 && req.Steps > 0 {
		// The last poll may have missed the final step.
		_ = progress(inference.ImageProgress{Index: n - 1, Step: req.Steps, Steps: req.Steps})
	}
	return res, nil
}

// pollProgress reports A1111's progress every ProgressInterval until ctx ends. Errors of the
// progress endpoint are ignored (the generation itself decides the job); an error of the
// callback stops the generation.
func (e *Engine) pollProgress(ctx context.Context, stop context.CancelCauseFunc, progress func(inference.ImageProgress) error) {
	t := time.NewTicker(e.cfg.ProgressInterval)
	defer t.Stop()
	last := inference.ImageProgress{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resp, err := e.do(ctx, http.MethodGet, "/sdapi/v1/progress?skip_current_image=true", nil)
		if err != nil {
			continue
		}
		var p progressResponse
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || p.State.SamplingSteps <= 0 {
			continue
		}
		cur := inference.ImageProgress{Index: p.State.JobNo, Step: p.State.SamplingStep, Steps: p.State.SamplingSteps}
		if cur == last {
			continue
		}
		last = cur
		if err := progress(cur); err != nil {
			stop(err)
			return
		}
	}
}

// interrupt asks A1111 to stop the running generation: closing the request does not stop it,
// and the next job would wait behind it.
func (e *Engine) interrupt() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := e.do(ctx, http.MethodPost, "/sdapi/v1/interrupt", struct{}{}); err == nil {
		resp.Body.Close()
	}
}
