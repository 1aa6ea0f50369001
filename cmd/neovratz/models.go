package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/neovratz/neovratz/internal/modelstore"
)

// modelsCommand lists the models directory.
type modelsCommand struct{ m *Main }

type modelsConfig struct {
	Models modelsDirConfig
	JSON   bool
}

func (c *modelsCommand) flags(cfg *modelsConfig) *flagSet {
	f := newFlagSet("models", "[flags]", `
Lists the models in the models directory: name (what to ask the server for), architecture,
parameters, quantization, size on disk, context length and when it changed. The facts come
from each file's own metadata. A file that cannot be read is listed with the reason.
`)
	var config string
	f.Config(&config)
	cfg.Models.define(f)
	f.Bool(&cfg.JSON, "json", false, "print a JSON array instead of a table")
	return f
}

func (c *modelsCommand) Usage(w io.Writer) { c.flags(&modelsConfig{}).Usage(w) }

// modelJSON is one model in the --json output.
type modelJSON struct {
	Name          string    `json:"name"`
	Format        string    `json:"format"`
	Path          string    `json:"path"`
	Files         []string  `json:"files"`
	Size          int64     `json:"size"`
	Modified      time.Time `json:"modified"`
	Title         string    `json:"title,omitempty"`
	Architecture  string    `json:"architecture,omitempty"`
	Parameters    uint64    `json:"parameters,omitempty"`
	Quantization  string    `json:"quantization,omitempty"`
	ContextLength uint64    `json:"context_length,omitempty"`
	Error         string    `json:"error,omitempty"`
}

func (c *modelsCommand) Run(ctx context.Context, args []string) error {
	var cfg modelsConfig
	if err := c.flags(&cfg).parse(args, c.m.getenv); err != nil {
		return err
	}
	store, err := cfg.Models.store(c.m)
	if err != nil {
		return err
	}
	models, err := store.List()
	if err != nil {
		return err
	}
	if cfg.JSON {
		out := make([]modelJSON, 0, len(models))
		for _, m := range models {
			j := modelJSON{Name: m.Name, Format: string(m.Format), Path: m.Path, Files: m.Files, Size: m.Size,
				Modified: m.Modified.UTC(), Title: m.Title, Architecture: m.Architecture, Parameters: m.Parameters,
				Quantization: m.Quantization, ContextLength: m.ContextLength}
			if m.Err != nil {
				j.Error = m.Err.Error()
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(c.m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(models) == 0 {
		fmt.Fprintf(c.m.Stderr, "no models in %s: get one with 'neovratz pull owner/repo:Q4_K_M'\n", store.Dir())
		return nil
	}
	tw := tabwriter.NewWriter(c.m.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCH\tPARAMS\tQUANT\tSIZE\tCONTEXT\tMODIFIED")
	for _, m := range models {
		if m.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t-\t%s\t(unreadable: %v)\n", m.Name, formatBytes(m.Size), m.Modified.Format("2006-01-02 15:04"), m.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, dash(m.Architecture), dash(m.ParamsString()), dash(m.Quantization),
			formatBytes(m.Size), contextString(m), m.Modified.Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

func contextString(m modelstore.Model) string {
	if m.ContextLength == 0 {
		return "-"
	}
	return fmt.Sprint(m.ContextLength)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
