package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/neovratz/neovratz/internal/engine/llama"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

// tokenizeCommand prints the token ids of a text under a GGUF model's tokenizer: a way to
// check the tokenizer from outside, against llama.cpp's.
type tokenizeCommand struct{ m *Main }

type tokenizeConfig struct {
	Model   string
	BOS     bool
	Special bool
}

func (c *tokenizeCommand) flags(cfg *tokenizeConfig) *flagSet {
	f := newFlagSet("tokenize", "--model FILE.gguf [--bos] [--special] TEXT",
		"Prints the token ids of TEXT under the model's tokenizer as a JSON array.")
	f.String(&cfg.Model, "model", "", "the GGUF model file", nil)
	f.Bool(&cfg.BOS, "bos", false, "put the BOS token first (when the model has one)")
	f.Bool(&cfg.Special, "special", false, "recognise the text of special tokens (<|im_start|>, <s>, …) as those tokens instead of plain text")
	return f
}

func (c *tokenizeCommand) Usage(w io.Writer) {
	var cfg tokenizeConfig
	c.flags(&cfg).Usage(w)
}

func (c *tokenizeCommand) Run(ctx context.Context, args []string) error {
	var cfg tokenizeConfig
	f := c.flags(&cfg)
	flagArgs, rest, err := splitPositional(f, args)
	if err != nil {
		return err
	}
	if err := f.parse(flagArgs, c.m.getenv); err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErrorf("want one TEXT argument, got %d", len(rest))
	}
	if cfg.Model == "" {
		return usageErrorf("--model is required")
	}
	m, err := llama.Open(cfg.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	ids := m.Tokenizer.Encode(rest[0], tokenizer.EncodeOptions{ParseSpecial: cfg.Special})
	if cfg.BOS && m.Tokenizer.BOS() >= 0 {
		ids = append([]int32{m.Tokenizer.BOS()}, ids...)
	}
	if ids == nil {
		ids = []int32{}
	}
	out, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.m.Stdout, "%s\n", out)
	return err
}

// splitPositional separates the flags in args from the positional arguments after them,
// which flagSet.parse refuses: Go's flag package stops at the first non-flag argument (or
// "--"), and what follows is positional.
func splitPositional(f *flagSet, args []string) (flags, rest []string, err error) {
	probe := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.SetOutput(io.Discard)
	f.fs.VisitAll(func(fl *flag.Flag) { probe.Var(fl.Value, fl.Name, fl.Usage) })
	if err := probe.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, errHelp
		}
		// Let parse report it the way every command does.
		return args, nil, nil
	}
	rest = probe.Args()
	flags = args[:len(args)-len(rest)]
	if len(flags) > 0 && flags[len(flags)-1] == "--" {
		flags = flags[:len(flags)-1]
	}
	return flags, rest, nil
}
