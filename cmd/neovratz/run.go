package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// runConfig is the validated configuration of `neovratz run`.
type runConfig struct {
	Model       string
	Prompt      string // from the arguments; "" for none
	Client      clientConfig
	Models      modelsDirConfig
	System      string
	MaxTokens   int
	Temperature *float64
	Local       bool
	Threads     int
}

// runCommand chats with a model.
type runCommand struct{ m *Main }

func (c *runCommand) flags(cfg *runConfig, temperature *string) *flagSet {
	f := newFlagSet("run", "MODEL [PROMPT] [flags]", `
Chats with MODEL through a running neovratz server (NEOVRATZ_HOST, default `+defaultHost+`,
with the key in NEOVRATZ_API_KEY).

With a PROMPT, or with input piped in, it prints the answer and exits; piped input is added to
the prompt. Otherwise it starts a chat: each message gets a streamed answer, and the chat keeps
its history until /clear. End a line with \ to go on typing on the next one, or put a message
between """ lines. Ctrl-C stops the answer being written. Commands: /bye leaves (as does
Ctrl-D), /clear forgets the history, /set system TEXT sets the system prompt, /? shows help.

With --local the model runs in this process on the native engine instead, from the models
directory (or a .gguf path): no server needed, but the model loads on every start.
`)
	var config string
	f.Config(&config)
	cfg.Client.define(f)
	cfg.Models.define(f)
	f.String(&cfg.System, "system", "", "system prompt", nil)
	f.Int(&cfg.MaxTokens, "max-tokens", 0, "most tokens an answer may have (0: the server's or model's limit)")
	f.String(temperature, "temperature", "", "sampling temperature, 0 to 2 (0: always the likeliest token)", checkTemperature)
	f.showDefault("temperature", "the server's")
	f.Bool(&cfg.Local, "local", false, "run the model in this process on the native engine instead of a server")
	f.Int(&cfg.Threads, "threads", 0, "--local: threads for the engine (0: one per CPU)")
	return f
}

func checkTemperature(s string) error {
	if s == "" {
		return nil
	}
	t, err := strconv.ParseFloat(s, 64)
	if err != nil || t < 0 || t > 2 {
		return errors.New("want a number from 0 to 2")
	}
	return nil
}

func (c *runCommand) Usage(w io.Writer) {
	var t string
	c.flags(&runConfig{}, &t).Usage(w)
}

func (c *runCommand) parse(args []string) (runConfig, error) {
	var cfg runConfig
	var temperature string
	f := c.flags(&cfg, &temperature)
	flags, pos := splitArgs(f, args, nil)
	if err := f.parse(flags, c.m.getenv); err != nil {
		return cfg, err
	}
	if len(pos) == 0 {
		return cfg, usageErrorf("want the model to run ('neovratz models' lists local ones)")
	}
	cfg.Model, cfg.Prompt = pos[0], strings.Join(pos[1:], " ")
	if temperature != "" {
		t, _ := strconv.ParseFloat(temperature, 64) // checked by the flag
		cfg.Temperature = &t
	}
	return cfg, nil
}

func (c *runCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	interactive := cfg.Prompt == "" && c.m.Stdin != nil && isTerminal(c.m.Stdin)
	prompt := cfg.Prompt
	if !interactive && c.m.Stdin != nil {
		// Piped input is the prompt, or is added to it: cat notes.txt | neovratz run m "Summarize:".
		in, err := io.ReadAll(c.m.Stdin)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		if s := strings.TrimSpace(string(in)); s != "" {
			if prompt != "" {
				prompt += "\n\n"
			}
			prompt += s
		}
	}
	if !interactive && prompt == "" {
		return usageErrorf("want a prompt: as an argument, or piped in")
	}

	var chat chatBackend
	if cfg.Local {
		chat, err = c.openLocal(cfg)
	} else {
		chat, err = c.openRemote(cfg)
	}
	if err != nil {
		return err
	}
	defer chat.Close()
	s := &chatSession{backend: chat, model: cfg.Model, system: cfg.System, maxTokens: cfg.MaxTokens,
		temperature: cfg.Temperature, out: c.m.Stdout, errOut: c.m.Stderr}
	if !interactive {
		return s.oneShot(ctx, prompt)
	}
	// Ctrl-C stops an answer, not the chat: take SIGINT over from main while chatting (after
	// the model is loaded, so that Ctrl-C during a long --local load still exits).
	intr, release := c.m.interrupts.take()
	defer release()
	return s.interactive(ctx, c.m.Stdin, intr)
}
