package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/engine/diffusion"
	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sample"
	"github.com/neovratz/neovratz/internal/kernels"
)

// txt2imgCommand runs the native diffusion engine in-process on one checkpoint and writes one
// PNG: the way to check the engine from outside, against stable-diffusion.cpp's images.
type txt2imgCommand struct{ m *Main }

type txt2imgConfig struct {
	Model      string
	Prompt     string
	Negative   string
	Output     string
	Width      int
	Height     int
	Steps      int
	CFGScale   float64
	Sampler    string
	Scheduler  string
	Seed       int64
	RNG        string
	Prediction string
	ClipSkip   int
	Threads    int
}

// schedulerNames are the schedules the engine knows.
var schedulerNames = []string{"discrete", "karras", "simple", "lcm"}

// predictionNames are the values of --prediction and the diffusion engine's prediction setting.
var predictionNames = []string{"auto", "eps", "v"}

func (c *txt2imgCommand) flags(cfg *txt2imgConfig) *flagSet {
	f := newFlagSet("txt2img", "--model FILE.safetensors --prompt TEXT [-o OUT.png] [flags]", `
Generates an image from a prompt with the native diffusion engine, in this process, from a
Stable Diffusion 1.x or 2.x checkpoint (a single .safetensors file), and writes it as a PNG
whose "parameters" text chunk records the settings as AUTOMATIC1111 writes them. Each step is
reported on stderr; the seed used is printed, so a random one (--seed -1) can be used again.
The size is rounded up to a multiple of 64.`)
	var config string
	f.Config(&config)
	f.String(&cfg.Model, "model", "", "the checkpoint (.safetensors)", nil)
	f.String(&cfg.Prompt, "prompt", "", "what the image should show", nil)
	f.String(&cfg.Negative, "negative", "", "what the image should not show (used when --cfg-scale is not 1)", nil)
	f.String(&cfg.Output, "output", "image.png", "file to write (-o for short)", nil)
	f.Int(&cfg.Width, "width", diffusion.DefaultSize, "width in pixels, 64 to 2048")
	f.Int(&cfg.Height, "height", diffusion.DefaultSize, "height in pixels, 64 to 2048")
	f.Int(&cfg.Steps, "steps", diffusion.DefaultSteps, "sampling steps, 1 to 1000")
	cfg.CFGScale = diffusion.DefaultCFG
	f.define("cfg-scale", "classifier-free guidance scale (how closely to follow the prompt); 1 skips the negative prompt", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
			return errors.New("want a number from 0 to 100")
		}
		cfg.CFGScale = v
		return nil
	}, func() string { return strconv.FormatFloat(cfg.CFGScale, 'g', -1, 64) }, false)
	f.String(&cfg.Sampler, "sampler", diffusion.DefaultSampler, "sampler: "+strings.Join(sample.Names, ", "), checkOneOf(sample.Names...))
	f.String(&cfg.Scheduler, "scheduler", "discrete", "noise schedule: "+strings.Join(schedulerNames, ", "), checkOneOf(schedulerNames...))
	cfg.Seed = -1
	f.define("seed", "seed of the noise; -1 picks one", func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < -1 {
			return errors.New("want -1 or a non-negative integer")
		}
		cfg.Seed = v
		return nil
	}, func() string { return strconv.FormatInt(cfg.Seed, 10) }, false)
	f.String(&cfg.RNG, "rng", rng.CUDA, "noise generator: cuda (torch's CUDA randn, AUTOMATIC1111's default) or cpu (torch's CPU randn, ComfyUI's)", checkOneOf(rng.CUDA, rng.CPU))
	f.String(&cfg.Prediction, "prediction", "auto", "what the UNet predicts: eps, v (SD 2.x 768-v models), or auto (eps: the weights cannot tell)", checkOneOf(predictionNames...))
	f.Int(&cfg.ClipSkip, "clip-skip", 0, "text encoder layers to skip from the end (0: the model family's default)")
	f.Int(&cfg.Threads, "threads", 0, "goroutines for the kernels (0: one per CPU)")
	return f
}

func (c *txt2imgCommand) Usage(w io.Writer) {
	var cfg txt2imgConfig
	c.flags(&cfg).Usage(w)
}

// prediction is the engine's name for a --prediction value.
func prediction(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

func (c *txt2imgCommand) Run(ctx context.Context, args []string) error {
	var cfg txt2imgConfig
	f := c.flags(&cfg)
	flags, pos := splitArgs(f, args, map[string]string{"o": "output"})
	if err := f.parse(append(flags, pos...), c.m.getenv); err != nil {
		return err
	}
	switch {
	case cfg.Model == "":
		return usageErrorf("--model is required")
	case cfg.Prompt == "":
		return usageErrorf("--prompt is required")
	case strings.TrimSpace(cfg.Output) == "":
		return usageErrorf("--output must name a file")
	case cfg.Width < 64 || cfg.Width > 2048:
		return usageErrorf("--width must be from 64 to 2048 (got %d)", cfg.Width)
	case cfg.Height < 64 || cfg.Height > 2048:
		return usageErrorf("--height must be from 64 to 2048 (got %d)", cfg.Height)
	case cfg.Steps < 1 || cfg.Steps > 1000:
		return usageErrorf("--steps must be from 1 to 1000 (got %d)", cfg.Steps)
	}
	threads := cfg.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	seed := cfg.Seed
	if seed < 0 {
		seed = rand.Int64N(1 << 31)
	}

	start := time.Now()
	m, err := diffusion.Open(cfg.Model) // the error names the file
	if err != nil {
		return err
	}
	defer m.Close()
	pool := kernels.NewPool(threads)
	defer pool.Close()
	p := diffusion.Params{
		Prompt: cfg.Prompt, Negative: cfg.Negative, Width: cfg.Width, Height: cfg.Height, Steps: cfg.Steps,
		CFGScale: float32(cfg.CFGScale), Sampler: cfg.Sampler, Scheduler: cfg.Scheduler, Seed: uint64(seed),
		RNG: cfg.RNG, Prediction: prediction(cfg.Prediction), ClipSkip: cfg.ClipSkip,
	}
	fmt.Fprintf(c.m.Stderr, "seed %d, %s, %d steps, %d threads\n", seed, m.Kind.Family, cfg.Steps, threads)
	last := time.Now()
	img, err := m.Generate(ctx, p, pool, func(step, steps int) error {
		now := time.Now()
		fmt.Fprintf(c.m.Stderr, "step %d/%d %.2fs\n", step, steps, now.Sub(last).Seconds())
		last = now
		return nil
	})
	if err != nil {
		return err
	}
	b, err := diffusion.EncodePNG(img, diffusion.ParametersText(p, modelLabel(cfg.Model)))
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.Output, b, 0o644); err != nil {
		return err
	}
	size := img.Bounds().Size()
	fmt.Fprintf(c.m.Stdout, "%s: %dx%d, seed %d, %.1fs\n", cfg.Output, size.X, size.Y, seed, time.Since(start).Seconds())
	return nil
}

// modelLabel is the name a PNG's parameters give the checkpoint: its file name without the
// extension, as AUTOMATIC1111 writes it.
func modelLabel(path string) string {
	name := path[strings.LastIndexAny(path, `/\`)+1:]
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	return name
}
