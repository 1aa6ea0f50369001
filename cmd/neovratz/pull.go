package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/modelstore"
	"github.com/neovratz/neovratz/internal/pull"
)

// defaultHub is where Hugging Face references go unless --hf-endpoint or HF_ENDPOINT say otherwise.
const defaultHub = "https://huggingface.co"

// pullConfig is the validated configuration of `neovratz pull`.
type pullConfig struct {
	Ref      pull.Ref
	Models   modelsDirConfig
	HubURL   string
	HubToken string
	As       string
	Force    bool
	Retries  int
}

// pullCommand downloads a model into the models directory.
type pullCommand struct{ m *Main }

func (c *pullCommand) flags(cfg *pullConfig) *flagSet {
	f := newFlagSet("pull", "REF [flags]", `
Downloads a model into the models directory. REF is one of:

  owner/repo:QUANT              the GGUF file of that quantization in a Hugging Face
                                repository (bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M); the
                                match ignores case, and a model split in shards comes whole
  owner/repo                    its Q4_K_M file, or its only GGUF file
  hf://owner/repo/path/file     one file of a repository (.gguf, or a .safetensors checkpoint);
                                owner/repo@revision picks a branch, tag or commit
  https://host/path/file.gguf   any URL

Downloads resume: an interrupted pull leaves <file>.partial, and pulling again continues it.
Files from Hugging Face are checked against the sha256 the hub publishes before they are put
in place. Gated and private repositories need an access token in HF_TOKEN. Proxies are taken
from HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
`)
	var config string
	f.Config(&config)
	cfg.Models.define(f)
	f.String(&cfg.HubURL, "hf-endpoint", "", "Hugging Face endpoint (a mirror, or a local server)", checkHTTPURL)
	f.showDefault("hf-endpoint", "$HF_ENDPOINT, else "+defaultHub)
	f.String(&cfg.HubToken, "hf-token", "", "Hugging Face access token (prefer the environment variable HF_TOKEN)", nil)
	f.showDefault("hf-token", "$HF_TOKEN")
	f.String(&cfg.As, "as", "", "local file name, instead of the remote one", nil)
	f.Bool(&cfg.Force, "force", false, "download again even when the file is already there")
	f.Int(&cfg.Retries, "retries", 5, "how often a dropped connection is resumed before giving up")
	return f
}

func (c *pullCommand) Usage(w io.Writer) { c.flags(&pullConfig{}).Usage(w) }

func (c *pullCommand) parse(args []string) (pullConfig, error) {
	var cfg pullConfig
	f := c.flags(&cfg)
	flags, pos := splitArgs(f, args, nil)
	if err := f.parse(flags, c.m.getenv); err != nil {
		return cfg, err
	}
	switch len(pos) {
	case 0:
		return cfg, usageErrorf("want the model to pull, such as owner/repo:Q4_K_M")
	case 1:
	default:
		return cfg, usageErrorf("want one model reference, got %d: %s", len(pos), strings.Join(pos, " "))
	}
	ref, err := pull.ParseRef(pos[0])
	if err != nil {
		return cfg, usageErrorf("%v", err)
	}
	cfg.Ref = ref
	// Hugging Face's own variables, as its tools read them, after neovratz's.
	if cfg.HubURL == "" {
		cfg.HubURL = c.m.getenv("HF_ENDPOINT")
		if err := checkHTTPURL(cfg.HubURL); err != nil {
			return cfg, usageErrorf("invalid value %q for HF_ENDPOINT: %v", cfg.HubURL, err)
		}
	}
	if cfg.HubURL == "" {
		cfg.HubURL = defaultHub
	}
	for _, key := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if cfg.HubToken == "" {
			cfg.HubToken = c.m.getenv(key)
		}
	}
	return cfg, nil
}

func (c *pullCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	dir, err := cfg.Models.dir(c.m)
	if err != nil {
		return err
	}
	p, err := pull.New(pull.Config{Dir: dir, HubURL: cfg.HubURL, Token: cfg.HubToken, Retries: cfg.Retries,
		UserAgent: "neovratz/" + version})
	if err != nil {
		return err
	}
	bar := newProgressBar(c.m.Stderr, time.Now)
	track := newTransferRate(time.Now)
	current := ""
	res, err := p.Pull(ctx, cfg.Ref, pull.Options{
		Name:  cfg.As,
		Force: cfg.Force,
		Progress: func(pr pull.Progress) {
			if pr.File != current { // the next shard: leave the last one's bar on its own line
				bar.done()
				current = pr.File
			}
			rate, eta := track.update(pr)
			detail := formatBytes(pr.Done)
			if pr.Total > 0 {
				detail += "/" + formatBytes(pr.Total)
			}
			if rate > 0 {
				detail += "  " + formatBytes(int64(rate)) + "/s"
			}
			if eta >= 0 {
				detail += "  ETA " + formatETA(eta)
			}
			frac := 0.0
			if pr.Total > 0 {
				frac = float64(pr.Done) / float64(pr.Total)
			}
			bar.update(pr.File, frac, detail, pr.Total > 0 && pr.Done == pr.Total)
		},
		Notice: func(s string) {
			bar.done()
			fmt.Fprintln(c.m.Stderr, s)
		},
	})
	bar.done()
	for _, f := range res.Files {
		switch {
		case f.Present:
			fmt.Fprintf(c.m.Stdout, "%s is already in %s (pull with --force to download it again)\n", f.Name, dir)
		case f.SHA256 != "":
			fmt.Fprintf(c.m.Stdout, "pulled %s (%s, sha256 verified) into %s\n", f.Name, formatBytes(f.Size), dir)
		default:
			fmt.Fprintf(c.m.Stdout, "pulled %s (%s; the source published no checksum) into %s\n", f.Name, formatBytes(f.Size), dir)
		}
	}
	if err != nil {
		return err
	}
	if len(res.Files) > 0 {
		if m, err := modelstore.Inspect(res.Files[0].Path); err == nil {
			fmt.Fprintf(c.m.Stdout, "model %s: %s\n", modelName(m, res), describeModel(m))
		}
	}
	return nil
}

// modelName is the name the pulled model is known by (without a shard suffix).
func modelName(m modelstore.Model, res pull.Result) string {
	if len(res.Files) > 1 {
		if i := strings.LastIndex(m.Name, "-00001-of-"); i > 0 {
			return m.Name[:i]
		}
	}
	return m.Name
}

// describeModel writes a model's facts in one line: llama, 1.2B parameters, Q4_K_M, context 131072.
func describeModel(m modelstore.Model) string {
	var parts []string
	if m.Architecture != "" {
		parts = append(parts, m.Architecture)
	}
	if p := m.ParamsString(); p != "" {
		parts = append(parts, p+" parameters")
	}
	if m.Quantization != "" {
		parts = append(parts, m.Quantization)
	}
	if m.ContextLength > 0 {
		parts = append(parts, fmt.Sprintf("context %d", m.ContextLength))
	}
	return strings.Join(parts, ", ")
}

// transferRate turns download progress into a rate and a remaining time. The rate is an
// exponentially weighted average over roughly the last few seconds, so that it follows a
// connection that speeds up or slows down, and counts only bytes that came over the network
// (not a partial file a download resumed).
type transferRate struct {
	now   func() time.Time
	file  string
	start int64
	last  time.Time
	done  int64
	rate  float64 // bytes per second
}

func newTransferRate(now func() time.Time) *transferRate { return &transferRate{now: now} }

// update records pr and returns the rate in bytes per second (0 until known) and the time left
// (negative when unknown).
func (t *transferRate) update(pr pull.Progress) (rate float64, eta time.Duration) {
	now := t.now()
	if pr.File != t.file || pr.Start != t.start || pr.Done < t.done {
		*t = transferRate{now: t.now, file: pr.File, start: pr.Start, last: now, done: pr.Done}
		return 0, -1
	}
	if dt := now.Sub(t.last).Seconds(); dt >= 0.2 {
		inst := float64(pr.Done-t.done) / dt
		if t.rate == 0 {
			t.rate = inst
		} else {
			w := min(dt/3, 1) // about a 3-second memory
			t.rate = t.rate*(1-w) + inst*w
		}
		t.last, t.done = now, pr.Done
	}
	if t.rate <= 0 || pr.Total <= 0 {
		return t.rate, -1
	}
	return t.rate, time.Duration(float64(pr.Total-pr.Done) / t.rate * float64(time.Second))
}
