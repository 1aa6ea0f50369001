package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/engine/llama"
	"github.com/neovratz/neovratz/internal/engine/llama/chattemplate"
	"github.com/neovratz/neovratz/internal/engine/llama/sample"
)

// generateCommand generates text from a prompt with the native engine, one sequence, and
// reports the speed of prefill and decode: the way to check the engine from outside, against
// llama.cpp's answers (llama-oracle) and speed (bench.mjs).
type generateCommand struct{ m *Main }

type generateConfig struct {
	Model       string
	Prompt      string
	MaxTokens   int
	Temperature float64
	Seed        int64
	Threads     int
	TopLogprobs int
	Context     int
	Chat        bool
	JSON        bool
	Parallel    int
	CPUProfile  string
}

func (c *generateCommand) flags(cfg *generateConfig) *flagSet {
	f := newFlagSet("generate", "--model FILE.gguf --prompt TEXT [flags]", `
Generates text after the prompt with the native engine and prints it, then the speed of
prefill (reading the prompt) and decode (generating) on stderr. The input is BOS (when the
model adds one) followed by the tokenized prompt, or with --chat the model's chat template
applied to the prompt as a user message. Generation stops at an end-of-generation token or
after --max-tokens.

With --json it prints one JSON line per generated token instead,
{"token": id, "text": "…", "top": [[id, probability], …]}, where the probabilities of the
--top-logprobs most likely tokens come from a plain softmax of that step's logits, and a
last line with prompt_tokens, generated_tokens, prefill_tokens_per_s and decode_tokens_per_s.`)
	f.String(&cfg.Model, "model", "", "the GGUF model file", nil)
	f.String(&cfg.Prompt, "prompt", "", "the prompt", nil)
	f.Int(&cfg.MaxTokens, "max-tokens", 128, "most tokens to generate")
	f.define("temperature", "sampling temperature; 0 picks the most likely token (greedy)", func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 100 || math.IsNaN(v) {
			return errors.New("want a number from 0 to 100")
		}
		cfg.Temperature = v
		return nil
	}, func() string { return strconv.FormatFloat(cfg.Temperature, 'g', -1, 64) }, false)
	cfg.Seed = -1
	f.define("seed", "seed of the sampler; -1 picks one", func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < -1 {
			return errors.New("want -1 or a non-negative integer")
		}
		cfg.Seed = v
		return nil
	}, func() string { return strconv.FormatInt(cfg.Seed, 10) }, false)
	f.Int(&cfg.Threads, "threads", 0, "goroutines for the forward pass")
	f.showDefault("threads", "the number of CPUs ("+strconv.Itoa(runtime.NumCPU())+")")
	f.Int(&cfg.TopLogprobs, "top-logprobs", 0, "with --json, how many of the most likely tokens to list per step")
	f.Int(&cfg.Context, "context", 4096, "most positions (prompt and generated tokens), capped by the model's context length")
	f.Bool(&cfg.Chat, "chat", false, "apply the model's chat template to the prompt as a user message")
	f.Bool(&cfg.JSON, "json", false, "print JSON lines per token and a summary line")
	f.Int(&cfg.Parallel, "parallel", 1, "run this many sequences of the prompt in one batch (a throughput benchmark: prints only the summary, with aggregate tokens/s)")
	f.String(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of prefill and decode to this file (for go tool pprof)", nil)
	return f
}

func (c *generateCommand) Usage(w io.Writer) {
	var cfg generateConfig
	c.flags(&cfg).Usage(w)
}

// tokenLine is a --json line per generated token.
type tokenLine struct {
	Token int32        `json:"token"`
	Text  string       `json:"text"`
	Top   [][2]float64 `json:"top"`
}

// summaryLine is the last --json line.
type summaryLine struct {
	PromptTokens      int     `json:"prompt_tokens"`
	GeneratedTokens   int     `json:"generated_tokens"`
	PrefillTokensPerS float64 `json:"prefill_tokens_per_s"`
	DecodeTokensPerS  float64 `json:"decode_tokens_per_s"`
	// Sequences is set with --parallel: the tokens and rates are then totals over them.
	Sequences int `json:"sequences,omitempty"`
}

func (c *generateCommand) Run(ctx context.Context, args []string) error {
	var cfg generateConfig
	if err := c.flags(&cfg).parse(args, c.m.getenv); err != nil {
		return err
	}
	switch {
	case cfg.Model == "":
		return usageErrorf("--model is required")
	case cfg.Prompt == "":
		return usageErrorf("--prompt is required")
	case cfg.MaxTokens == 0:
		return usageErrorf("--max-tokens must be at least 1")
	case cfg.Context == 0:
		return usageErrorf("--context must be at least 1")
	case cfg.Parallel == 0:
		return usageErrorf("--parallel must be at least 1")
	}
	m, err := llama.Open(cfg.Model)
	if err != nil {
		return err
	}
	defer m.Close()

	var prompt []int32
	if cfg.Chat {
		prompt, err = m.ChatPrompt([]chattemplate.Message{{Role: "user", Content: cfg.Prompt}})
		if err != nil {
			return err
		}
	} else {
		// Special-token text in the prompt stays plain text, as llama-oracle tokenizes it.
		prompt = m.Encode(cfg.Prompt, false)
	}
	n := min(cfg.Context, m.Params.ContextLen)
	if len(prompt) >= n {
		return fmt.Errorf("the prompt has %d tokens; the context holds %d", len(prompt), n)
	}
	maxTokens := min(cfg.MaxTokens, n-len(prompt))
	seed := uint64(cfg.Seed)
	if cfg.Seed < 0 {
		seed = uint64(time.Now().UnixNano())
	}
	smp := sample.New(sample.Params{Temperature: cfg.Temperature, Seed: seed})

	r := m.NewRunner(cfg.Threads, n)
	defer r.Close()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.Parallel > 1 {
		return c.parallel(ctx, r, m, prompt, n, maxTokens, cfg, seed)
	}
	cache := m.NewKVCache(n)
	logits := make([]float32, m.Params.Vocab)
	dec := m.Tokenizer.NewDecoder()
	out := bufio.NewWriter(c.m.Stdout)
	defer out.Flush()

	start := time.Now()
	if err := r.Forward([]llama.Step{{Cache: cache, Tokens: prompt, Logits: logits}}); err != nil {
		return err
	}
	prefill := time.Since(start)
	decodeStart := time.Now()
	generated, decodeSteps := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok := smp.Sample(logits)
		smp.Accept(tok)
		generated++
		text := strings.ToValidUTF8(dec.Push(tok), "\uFFFD")
		if cfg.JSON {
			line := tokenLine{Token: tok, Text: text, Top: [][2]float64{}}
			if cfg.TopLogprobs > 0 {
				_, top := sample.Logprobs(logits, tok, cfg.TopLogprobs)
				for _, t := range top {
					line.Top = append(line.Top, [2]float64{float64(t.ID), math.Exp(t.Logprob)})
				}
			}
			b, _ := json.Marshal(line)
			out.Write(append(b, '\n'))
		} else {
			out.WriteString(text)
			out.Flush()
		}
		if m.Tokenizer.IsEOG(tok) || generated >= maxTokens {
			break
		}
		if err := r.Forward([]llama.Step{{Cache: cache, Tokens: []int32{tok}, Logits: logits}}); err != nil {
			return err
		}
		decodeSteps++
	}
	decode := time.Since(decodeStart)
	sum := summaryLine{PromptTokens: len(prompt), GeneratedTokens: generated,
		PrefillTokensPerS: rate(len(prompt), prefill), DecodeTokensPerS: rate(decodeSteps, decode)}
	if cfg.JSON {
		b, _ := json.Marshal(sum)
		out.Write(append(b, '\n'))
		return nil
	}
	out.WriteString(strings.ToValidUTF8(dec.Flush(), "\uFFFD") + "\n")
	out.Flush()
	fmt.Fprintf(c.m.Stderr, "prompt %d tokens, %.2f tokens/s; generated %d tokens, %.2f tokens/s (%d threads)\n",
		sum.PromptTokens, sum.PrefillTokensPerS, sum.GeneratedTokens, sum.DecodeTokensPerS, r.Threads())
	return nil
}

// rate is n per second over d, rounded to 2 decimals as bench.mjs prints it.
func rate(n int, d time.Duration) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*100) / 100
}

// parallel runs cfg.Parallel sequences of the same prompt together: one batched pass reads
// all the prompts, then each pass advances every sequence by a token. It prints the summary
// with totals over the sequences: what the engine's continuous batching gives a loaded server.
func (c *generateCommand) parallel(ctx context.Context, r *llama.Runner, m *llama.Model, prompt []int32, n, maxTokens int, cfg generateConfig, seed uint64) error {
	type seq struct {
		cache  *llama.KVCache
		smp    *sample.Sampler
		logits []float32
		done   bool
	}
	seqs := make([]*seq, cfg.Parallel)
	steps := make([]llama.Step, 0, len(seqs))
	for i := range seqs {
		s := &seq{cache: m.NewKVCache(n), smp: sample.New(sample.Params{Temperature: cfg.Temperature, Seed: seed + uint64(i)}),
			logits: make([]float32, m.Params.Vocab)}
		seqs[i] = s
		steps = append(steps, llama.Step{Cache: s.cache, Tokens: prompt, Logits: s.logits})
	}
	start := time.Now()
	if err := r.Forward(steps); err != nil {
		return err
	}
	prefill := time.Since(start)
	decodeStart := time.Now()
	generated, decoded := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		steps = steps[:0]
		for _, s := range seqs {
			if s.done {
				continue
			}
			tok := s.smp.Sample(s.logits)
			s.smp.Accept(tok)
			generated++
			if m.Tokenizer.IsEOG(tok) || s.cache.Len()-len(prompt)+1 >= maxTokens {
				s.done = true
				continue
			}
			steps = append(steps, llama.Step{Cache: s.cache, Tokens: []int32{tok}, Logits: s.logits})
		}
		if len(steps) == 0 {
			break
		}
		if err := r.Forward(steps); err != nil {
			return err
		}
		decoded += len(steps)
	}
	decode := time.Since(decodeStart)
	sum := summaryLine{PromptTokens: len(prompt) * len(seqs), GeneratedTokens: generated, Sequences: len(seqs),
		PrefillTokensPerS: rate(len(prompt)*len(seqs), prefill), DecodeTokensPerS: rate(decoded, decode)}
	b, _ := json.Marshal(sum)
	_, err := fmt.Fprintf(c.m.Stdout, "%s\n", b)
	return err
}
