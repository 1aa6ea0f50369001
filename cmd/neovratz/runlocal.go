package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/neovratz/neovratz/internal/client"
	"github.com/neovratz/neovratz/internal/engine/llama"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/modelstore"
	"github.com/neovratz/neovratz/internal/openai"
)

// localChat runs a model in this process on the native engine (run --local).
type localChat struct {
	name  string
	model *llama.Model
	eng   *llama.Engine
}

// openLocal loads the model named by cfg.Model: a .gguf path, or a name in the models directory.
func (c *runCommand) openLocal(cfg runConfig) (chatBackend, error) {
	path := cfg.Model
	if st, err := os.Stat(path); err != nil || st.IsDir() || !strings.EqualFold(filepath.Ext(path), ".gguf") {
		store, err := cfg.Models.store(c.m)
		if err != nil {
			return nil, err
		}
		m, err := store.Resolve(cfg.Model)
		if err != nil {
			return nil, err
		}
		if m.Format != modelstore.FormatGGUF {
			return nil, fmt.Errorf("%s is a %s file: --local runs GGUF language models only", m.Name, m.Format)
		}
		path = m.Path
	}
	fmt.Fprintf(c.m.Stderr, "loading %s\n", path)
	model, err := llama.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", cfg.Model, err)
	}
	eng, err := llama.NewEngine(model, llama.Config{Threads: cfg.Threads, Sequences: 1})
	if err != nil {
		model.Close()
		return nil, fmt.Errorf("load %s: %w", cfg.Model, err)
	}
	return &localChat{name: cfg.Model, model: model, eng: eng}, nil
}

func (l *localChat) Chat(ctx context.Context, req client.ChatRequest, onDelta func(string)) (client.ChatResult, error) {
	tr := inference.TextRequest{Model: l.name, N: 1, MaxTokens: req.MaxTokens,
		Sampling: openai.Sampling{Temperature: req.Temperature, Seed: req.Seed}}
	for _, m := range req.Messages {
		tr.Messages = append(tr.Messages, openai.Message{Role: m.Role, Content: openai.Content(m.Content)})
	}
	res, err := l.eng.GenerateText(ctx, tr, func(d inference.TextDelta) error {
		if d.Index == 0 && onDelta != nil {
			onDelta(d.Text)
		}
		return nil
	})
	if err != nil {
		return client.ChatResult{}, err
	}
	out := client.ChatResult{PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens}
	if len(res.Choices) > 0 {
		out.Text, out.FinishReason = res.Choices[0].Text, res.Choices[0].FinishReason
	}
	return out, nil
}

func (l *localChat) Close() error {
	err := l.eng.Close()
	if cerr := l.model.Close(); err == nil {
		err = cerr
	}
	return err
}
