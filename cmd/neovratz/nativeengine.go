package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/engine/diffusion"
	"github.com/neovratz/neovratz/internal/engine/llama"
	"github.com/neovratz/neovratz/internal/modelstore"
	"github.com/neovratz/neovratz/internal/safetensors"
	"github.com/neovratz/neovratz/internal/worker"
)

// defaultSlots is how many jobs at once serve gives each model it finds in the models
// directory: the native engine advances them together in one batched step per token.
const defaultSlots = 4

// llamaEngine is the native engine of one model entry, with the model file it opened: closing
// it stops the engine, then unmaps the file.
type llamaEngine struct {
	*llama.Engine
	model *llama.Model
}

func (e *llamaEngine) Close() error {
	err := e.Engine.Close()
	if cerr := e.model.Close(); err == nil {
		err = cerr
	}
	return err
}

// openLlama opens the model file of a model entry (mapped, not read) and starts the native
// engine on it, recording the load time or the failure in loads.
func openLlama(m modelConfig, env engineEnv, loads *worker.EngineLoads) (*llamaEngine, error) {
	path, err := modelFile(m.Llama.Model, env, "llama")
	if err != nil {
		loads.Failed(m.Name)
		return nil, keyError("llama.model", "%v", err)
	}
	start := time.Now()
	model, err := llama.Open(path) // the error names the file
	if err != nil {
		loads.Failed(m.Name)
		return nil, err
	}
	cfg := llama.Config{Threads: m.Llama.Threads, Context: m.Llama.Context, Sequences: m.Llama.Sequences}
	if cfg.Threads == 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Sequences == 0 {
		cfg.Sequences = m.Slots
	}
	eng, err := llama.NewEngine(model, cfg)
	if err != nil {
		model.Close()
		loads.Failed(m.Name)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	took := time.Since(start)
	loads.Loaded(m.Name, took)
	env.logger.Info("model loaded", "model", m.Name, "engine", "llama", "file", path, "seconds", took.Seconds(),
		"architecture", model.Params.Arch, "context", eng.Context(), "sequences", cfg.Sequences, "threads", cfg.Threads)
	return &llamaEngine{Engine: eng, model: model}, nil
}

// openDiffusion opens the checkpoint of a model entry (mapped, not read) and starts the native
// diffusion engine on it, recording the load time or the failure in loads. Closing the engine
// unmaps the checkpoint.
func openDiffusion(m modelConfig, env engineEnv, loads *worker.EngineLoads) (*diffusion.Engine, error) {
	d := m.Diffusion
	path, err := modelFile(d.Model, env, "diffusion")
	if err != nil {
		loads.Failed(m.Name)
		return nil, keyError("diffusion.model", "%v", err)
	}
	start := time.Now()
	model, err := diffusion.Open(path)
	if err != nil {
		loads.Failed(m.Name)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	opts := diffusion.EngineOptions{Name: m.Name, Threads: d.Threads, RNG: d.RNG, Prediction: prediction(d.Prediction),
		ClipSkip: d.ClipSkip, Scheduler: d.Scheduler}
	if opts.Threads == 0 {
		opts.Threads = runtime.NumCPU()
	}
	eng, err := diffusion.NewEngine(model, opts)
	if err != nil {
		model.Close()
		loads.Failed(m.Name)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	took := time.Since(start)
	loads.Loaded(m.Name, took)
	env.logger.Info("model loaded", "model", m.Name, "engine", "diffusion", "file", path, "seconds", took.Seconds(),
		"family", string(model.Kind.Family), "threads", opts.Threads)
	return eng, nil
}

// modelFile finds the file a llama.model or diffusion.model setting names: a path to a file,
// or the name of a model in the models directory (as `neovratz models` lists it) that engine
// loads.
func modelFile(ref string, env engineEnv, engine string) (string, error) {
	ref = strings.TrimSpace(ref)
	path := ref
	if env.home != nil {
		var err error
		if path, err = expandHome(ref, env.home); err != nil {
			return "", err
		}
	}
	st, err := os.Stat(path)
	isPath := filepath.IsAbs(ref) || strings.HasPrefix(ref, "~/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../")
	switch {
	case err == nil && st.Mode().IsRegular():
		return path, nil
	case isPath && err == nil:
		return "", fmt.Errorf("%s is not a file", path)
	case isPath:
		return "", err
	}
	m, err := modelstore.New(env.modelsDir).Resolve(ref)
	if err != nil {
		return "", err
	}
	got, err := nativeLoadable(m)
	if err != nil {
		return "", err
	}
	if got != engine {
		return "", fmt.Errorf("%w: %s is for engine %s, not %s", errNotNative, m.Name, got, engine)
	}
	return m.Path, nil
}

// errNotNative says why a model of the models directory is not for a native engine.
var errNotNative = errors.New("not a model the native engine loads")

// nativeLoadable tells which native engine can try a model of the models directory: llama for
// one GGUF file, diffusion for a single-file SD 1.x or 2.x checkpoint (its tensor header is
// read to tell; the weights are not).
func nativeLoadable(m modelstore.Model) (engine string, err error) {
	switch {
	case len(m.Files) > 1:
		return "", fmt.Errorf("%w: %s is split into %d files and the native engines load single-file models (merge them with llama-gguf-split --merge)",
			errNotNative, m.Name, len(m.Files))
	case m.Format == modelstore.FormatGGUF:
		return "llama", nil
	case m.Format == modelstore.FormatSafetensors:
		f, err := safetensors.Open(m.Path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", errNotNative, err)
		}
		defer f.Close()
		if _, err := diffusion.Detect(f); err != nil {
			return "", fmt.Errorf("%w: %s: %v", errNotNative, m.Name, err)
		}
		return "diffusion", nil
	}
	return "", fmt.Errorf("%w: %s is a %s file", errNotNative, m.Name, m.Format)
}

// modelsDirModels is the models section serve makes of its models directory when its config
// file has none: every GGUF model and every SD 1.x/2.x checkpoint, under its name, on the
// native engines. Files they cannot take are logged once and left out; a missing or empty
// directory serves nothing.
func modelsDirModels(dir string, logger *slog.Logger) ([]modelConfig, error) {
	list, err := modelstore.New(dir).List()
	if err != nil {
		return nil, fmt.Errorf("list the models directory: %w", err)
	}
	var models []modelConfig
	for _, m := range list {
		engine, err := nativeLoadable(m)
		if err != nil {
			logger.Warn("skipping a model the native engine cannot load", "model", m.Name, "file", m.Path, "err", err)
			continue
		}
		if engine == "diffusion" {
			// The engine runs one generation at a time, on all its threads.
			models = append(models, modelConfig{Name: m.Name, Kind: string(worker.KindImage), Slots: 1,
				Engine: "diffusion", Diffusion: &diffusionConfig{Model: m.Path}})
			continue
		}
		models = append(models, modelConfig{Name: m.Name, Kind: string(worker.KindText), Slots: defaultSlots,
			Engine: "llama", Llama: &llamaConfig{Model: m.Path}})
	}
	if len(list) == 0 {
		logger.Info("no models in the models directory: download one with 'neovratz pull REF' (for example 'neovratz pull Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0'), then start serve again",
			"models_dir", dir)
	}
	return models, nil
}
