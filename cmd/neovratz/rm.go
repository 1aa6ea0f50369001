package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// rmCommand removes models from the models directory.
type rmCommand struct{ m *Main }

func (c *rmCommand) flags(cfg *modelsDirConfig) *flagSet {
	f := newFlagSet("rm", "MODEL... [flags]", `
Removes models from the models directory: every file of each (all the shards of a split
model) and any partial download of them. MODEL is a name as 'neovratz models' lists it.
A running server that loaded the model keeps serving it until it restarts.
`)
	var config string
	f.Config(&config)
	cfg.define(f)
	return f
}

func (c *rmCommand) Usage(w io.Writer) { c.flags(&modelsDirConfig{}).Usage(w) }

func (c *rmCommand) Run(ctx context.Context, args []string) error {
	var cfg modelsDirConfig
	f := c.flags(&cfg)
	flags, names := splitArgs(f, args, nil)
	if err := f.parse(flags, c.m.getenv); err != nil {
		return err
	}
	if len(names) == 0 {
		return usageErrorf("want the name of the model to remove ('neovratz models' lists them)")
	}
	store, err := cfg.store(c.m)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		m, err := store.Remove(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files := ""
		if len(m.Files) > 1 {
			files = fmt.Sprintf(", %d files", len(m.Files))
		}
		fmt.Fprintf(c.m.Stdout, "removed %s (%s%s)\n", m.Name, formatBytes(m.Size), files)
	}
	return errors.Join(errs...)
}
