package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/client"
)

// imageCommandConfig is the validated configuration of `neovratz image`.
type imageCommandConfig struct {
	Request client.ImageRequest
	Output  string
	Client  clientConfig
}

// imageCommand generates images through a server.
type imageCommand struct{ m *Main }

// imageFlagValues are the flags parsed as text and checked after.
type imageFlagValues struct {
	seed, cfgScale string
}

func (c *imageCommand) flags(cfg *imageCommandConfig, v *imageFlagValues) *flagSet {
	f := newFlagSet("image", "MODEL PROMPT [-o FILE.png] [flags]", `
Generates an image from PROMPT with MODEL through a running neovratz server (NEOVRATZ_HOST,
default `+defaultHost+`, with the key in NEOVRATZ_API_KEY) and writes it as a PNG, showing
the diffusion steps as they go. With -n above 1 the images are FILE.png, FILE-2.png, …

Progress needs an API key with the jobs scope; with an inference-only key the image comes from
the plain images API, without progress. Ctrl-C cancels the generation on the server.
`)
	var config string
	f.Config(&config)
	cfg.Client.define(f)
	f.String(&cfg.Output, "output", "image.png", "file to write (-o for short)", nil)
	f.String(&cfg.Request.Size, "size", "", "WIDTHxHEIGHT, each a multiple of 8", checkSize)
	f.showDefault("size", "the server's (512x512)")
	f.Int(&cfg.Request.N, "n", 1, "how many images")
	f.Int(&cfg.Request.Steps, "steps", 0, "diffusion steps (0: the engine's default)")
	f.String(&v.cfgScale, "cfg-scale", "", "classifier-free guidance scale (how closely to follow the prompt)", checkFloat)
	f.showDefault("cfg-scale", "the engine's")
	f.String(&v.seed, "seed", "", "seed, for the same image again", checkInt64)
	f.showDefault("seed", "random")
	f.String(&cfg.Request.NegativePrompt, "negative-prompt", "", "what the image should not show", nil)
	f.String(&cfg.Request.Sampler, "sampler", "", "sampler name, as the engine knows them", nil)
	return f
}

func checkSize(s string) error {
	if s == "" {
		return nil
	}
	w, h, ok := strings.Cut(s, "x")
	if _, err := strconv.Atoi(w); !ok || err != nil {
		return errors.New("want WIDTHxHEIGHT, such as 768x512")
	}
	if _, err := strconv.Atoi(h); err != nil {
		return errors.New("want WIDTHxHEIGHT, such as 768x512")
	}
	return nil
}

func checkFloat(s string) error {
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return errors.New("want a number")
	}
	return nil
}

func checkInt64(s string) error {
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return errors.New("want an integer")
	}
	return nil
}

func (c *imageCommand) Usage(w io.Writer) {
	c.flags(&imageCommandConfig{}, &imageFlagValues{}).Usage(w)
}

func (c *imageCommand) parse(args []string) (imageCommandConfig, error) {
	var cfg imageCommandConfig
	var v imageFlagValues
	f := c.flags(&cfg, &v)
	flags, pos := splitArgs(f, args, map[string]string{"o": "output"})
	if err := f.parse(flags, c.m.getenv); err != nil {
		return cfg, err
	}
	if len(pos) < 2 {
		return cfg, usageErrorf("want the model and the prompt: neovratz image MODEL PROMPT -o FILE.png")
	}
	cfg.Request.Model, cfg.Request.Prompt = pos[0], strings.Join(pos[1:], " ")
	if cfg.Request.N < 1 {
		return cfg, usageErrorf("--n must be at least 1")
	}
	if v.seed != "" {
		seed, _ := strconv.ParseInt(v.seed, 10, 64) // checked by the flag
		cfg.Request.Seed = &seed
	}
	if v.cfgScale != "" {
		cfg.Request.CFGScale, _ = strconv.ParseFloat(v.cfgScale, 64)
	}
	if cfg.Output == "" {
		return cfg, usageErrorf("--output must name a file")
	}
	return cfg, nil
}

func (c *imageCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	cl, err := cfg.Client.newClient()
	if err != nil {
		return err
	}
	bar := newProgressBar(c.m.Stderr, time.Now)
	started := time.Now()
	res, err := cl.GenerateImage(ctx, cfg.Request, func(p client.ImageProgress) {
		label := "image"
		if p.Images > 1 {
			label = fmt.Sprintf("image %d/%d", p.Image+1, p.Images)
		}
		frac := float64(p.Step) / float64(max(p.Steps, 1))
		detail := fmt.Sprintf("step %d/%d", p.Step, p.Steps)
		// The time left extrapolates from the steps done so far over every image.
		done := p.Image*p.Steps + p.Step
		if total := p.Images * p.Steps; done > 0 && done < total {
			left := time.Duration(float64(time.Since(started)) / float64(done) * float64(total-done))
			detail += "  ETA " + formatETA(left)
		}
		bar.update(label, frac, detail, p.Step == p.Steps)
		if p.Step == p.Steps {
			bar.done()
		}
	})
	bar.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("canceled")
		}
		return cfg.Client.explain(err)
	}
	for i, img := range res.Images {
		name := outputName(cfg.Output, i)
		if err := os.WriteFile(name, img, 0o644); err != nil {
			return err
		}
		size := ""
		if pc, err := png.DecodeConfig(bytes.NewReader(img)); err == nil {
			size = fmt.Sprintf(" (%dx%d)", pc.Width, pc.Height)
		}
		fmt.Fprintf(c.m.Stdout, "wrote %s%s\n", name, size)
	}
	return nil
}

// outputName is the file of the i-th image: out.png, out-2.png, out-3.png, …
func outputName(out string, i int) string {
	if i == 0 {
		return out
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(out, ext), i+1, ext)
}
