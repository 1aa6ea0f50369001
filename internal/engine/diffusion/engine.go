package diffusion

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sample"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/kernels"
)

// Engine defaults for what a request leaves out.
const (
	DefaultSteps   = 20
	DefaultCFG     = 7
	DefaultSampler = "euler_a"
	DefaultSize    = 512
)

// EngineOptions configure an Engine beyond what each request says.
type EngineOptions struct {
	// Name is the model's name, recorded in the PNGs.
	Name string
	// Threads for the kernels (0: 1).
	Threads int
	// RNG is rng.CUDA (AUTOMATIC1111's default, the default here) or
	// rng.CPU (ComfyUI's).
	RNG string
	// Prediction is "eps", "v", or "" for eps: weights cannot tell, so
	// v-prediction models (SD 2.x 768) must say so.
	Prediction string
	// ClipSkip is 0 for the family's default.
	ClipSkip int
	// Scheduler is the noise schedule (discrete, karras, simple, lcm); ""
	// for the sampler's default.
	Scheduler string
	// Seed picks a seed when a request asks for a random one (-1); nil
	// uses math/rand/v2.
	Seed func() int64
}

// Engine serves image jobs from one model (the worker's ImageEngine). One
// generation runs at a time, on all the engine's threads.
type Engine struct {
	m    *Model
	opts EngineOptions
	pool *kernels.Pool
	mu   sync.Mutex
}

// NewEngine returns an engine for m; Close closes m.
func NewEngine(m *Model, opts EngineOptions) (*Engine, error) {
	if opts.RNG == "" {
		opts.RNG = rng.CUDA
	}
	if _, err := rng.New(opts.RNG, 0); err != nil {
		return nil, err
	}
	switch opts.Prediction {
	case "", "eps", "v":
	default:
		return nil, fmt.Errorf("diffusion: prediction %q (want eps or v)", opts.Prediction)
	}
	if opts.Seed == nil {
		opts.Seed = func() int64 { return rand.Int64N(1 << 31) }
	}
	return &Engine{m: m, opts: opts, pool: kernels.NewPool(max(opts.Threads, 1))}, nil
}

// GenerateImage runs an image request: N images, the i-th with seed+i as
// stable-diffusion.cpp numbers a batch, each reported with its seed.
func (e *Engine) GenerateImage(ctx context.Context, req inference.ImageRequest, progress func(inference.ImageProgress) error) (inference.ImageResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := Params{
		Prompt: req.Prompt, Negative: req.NegativePrompt, Width: req.Width, Height: req.Height,
		Steps: req.Steps, CFGScale: float32(req.CFGScale), Sampler: req.Sampler,
		Scheduler: e.opts.Scheduler, RNG: e.opts.RNG, Prediction: e.opts.Prediction, ClipSkip: e.opts.ClipSkip,
	}
	if p.Width == 0 {
		p.Width = DefaultSize
	}
	if p.Height == 0 {
		p.Height = DefaultSize
	}
	if p.Steps == 0 {
		p.Steps = DefaultSteps
	}
	if req.CFGScale == 0 {
		p.CFGScale = DefaultCFG
	}
	if p.Sampler == "" {
		p.Sampler = DefaultSampler
	}
	if !slices.Contains(sample.Names, p.Sampler) {
		return inference.ImageResult{}, fmt.Errorf("diffusion: unknown sampler %q (want one of %v)", p.Sampler, sample.Names)
	}
	seed := req.Seed
	if seed < 0 {
		seed = e.opts.Seed()
	}
	n := max(req.N, 1)
	var res inference.ImageResult
	for i := range n {
		p.Seed = uint64(seed + int64(i))
		img, err := e.m.Generate(ctx, p, e.pool, func(step, steps int) error {
			if progress == nil {
				return nil
			}
			return progress(inference.ImageProgress{Index: i, Step: step, Steps: steps})
		})
		if err != nil {
			return inference.ImageResult{}, err
		}
		b, err := EncodePNG(img, ParametersText(p, e.opts.Name))
		if err != nil {
			return inference.ImageResult{}, err
		}
		res.Images = append(res.Images, inference.GeneratedImage{PNG: b, Seed: seed + int64(i)})
	}
	return res, nil
}

// Close stops the engine's threads and releases the model.
func (e *Engine) Close() error {
	e.pool.Close()
	return e.m.Close()
}
