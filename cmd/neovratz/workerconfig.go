package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/neovratz/neovratz/internal/engine/diffusion/rng"
	"github.com/neovratz/neovratz/internal/engine/imageup"
	"github.com/neovratz/neovratz/internal/engine/openaiup"
	"github.com/neovratz/neovratz/internal/engine/process"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/worker"
)

// The models a worker serves are the "models" section of its config file (the rest of the file
// holds flags):
//
//	redis-url: redis://redis:6379/0
//	models:
//	  - name: llama-3.1-8b            # the name clients ask for
//	    kind: text                    # text, image or embedding
//	    slots: 8                      # jobs at once
//	    limits: {max-tokens: 4096, max-context: 8192}
//	    engine: openai                # llama, diffusion, openai, image, process, sim (load tests only)
//	    openai:                       # the settings of the engine named above
//	      base-url: http://127.0.0.1:8000/v1
//	      model: meta-llama/Llama-3.1-8B-Instruct
//
// Unknown keys and invalid values are errors that name the key.

// modelConfig is one entry of the models section.
type modelConfig struct {
	Name   string       `yaml:"name"`
	Kind   string       `yaml:"kind"`
	Slots  int          `yaml:"slots"`
	Limits limitsConfig `yaml:"limits"`
	Engine string       `yaml:"engine"`
	// StreamInterval spaces a job's event writes after the first (see worker.Model).
	StreamInterval duration `yaml:"stream-interval"`

	Llama     *llamaConfig     `yaml:"llama"`
	Diffusion *diffusionConfig `yaml:"diffusion"`
	OpenAI    *openaiConfig    `yaml:"openai"`
	Image     *imageConfig     `yaml:"image"`
	Process   *processConfig   `yaml:"process"`
	Sim       *simConfig       `yaml:"sim"`
}

type limitsConfig struct {
	MaxTokens     int `yaml:"max-tokens"`
	MaxContext    int `yaml:"max-context"`
	MaxImageSide  int `yaml:"max-image-side"`
	MaxImageSteps int `yaml:"max-image-steps"`
}

// llamaConfig is the native engine's settings.
type llamaConfig struct {
	// Model is a GGUF file's path, or the name of a model in the models directory.
	Model   string `yaml:"model"`
	Threads int    `yaml:"threads"` // goroutines per forward pass; 0: one per CPU
	Context int    `yaml:"context"` // caps the model's context length; 0: the model's
	// Sequences is how many sequences advance together in one batched step; 0: slots.
	Sequences int `yaml:"sequences"`
}

// diffusionConfig is the native diffusion engine's settings.
type diffusionConfig struct {
	// Model is a Stable Diffusion checkpoint's path (.safetensors), or the name of a model in
	// the models directory.
	Model   string `yaml:"model"`
	Threads int    `yaml:"threads"` // goroutines for the kernels; 0: one per CPU
	RNG     string `yaml:"rng"`     // cuda (default) or cpu
	// Prediction is eps, v or auto (eps: the weights cannot tell).
	Prediction string `yaml:"prediction"`
	ClipSkip   int    `yaml:"clip-skip"` // 0: the model family's default
	// Scheduler is the noise schedule of every request; "": the sampler's default.
	Scheduler string `yaml:"scheduler"`
}

type openaiConfig struct {
	BaseURL      string   `yaml:"base-url"`
	APIKey       string   `yaml:"api-key"`
	Model        string   `yaml:"model"`
	HealthURL    string   `yaml:"health-url"`
	StallTimeout duration `yaml:"stall-timeout"`
}

type imageConfig struct {
	API              string   `yaml:"api"` // a1111 or openai
	BaseURL          string   `yaml:"base-url"`
	APIKey           string   `yaml:"api-key"`
	Model            string   `yaml:"model"`
	ProgressInterval duration `yaml:"progress-interval"`
	Timeout          duration `yaml:"timeout"`
}

type processConfig struct {
	Command      commandLine `yaml:"command"`
	Model        string      `yaml:"model"` // substituted for {model}
	Port         int         `yaml:"port"`
	Dir          string      `yaml:"dir"`
	Env          []string    `yaml:"env"`
	HealthPath   string      `yaml:"health-path"`
	StartTimeout duration    `yaml:"start-timeout"`
	StopTimeout  duration    `yaml:"stop-timeout"`
	ServedModel  string      `yaml:"served-model"` // the name requests use; default: the model's name
	APIKey       string      `yaml:"api-key"`
	StallTimeout duration    `yaml:"stall-timeout"`
}

// commandLine reads a command as one string (split like a shell would, without expansion) or
// as a list of words.
type commandLine []string

func (c *commandLine) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		words, err := process.SplitCommand(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: command: %v", n.Line, err)
		}
		*c = words
		return nil
	}
	var words []string
	if err := n.Decode(&words); err != nil {
		return err
	}
	*c = words
	return nil
}

type simConfig struct {
	TimeToFirstToken  duration `yaml:"time-to-first-token"`
	InterTokenLatency duration `yaml:"inter-token-latency"`
	Tokens            int      `yaml:"tokens"`
	EmbeddingDim      int      `yaml:"embedding-dim"`
	ImageStepTime     duration `yaml:"image-step-time"`
	ImageSteps        int      `yaml:"image-steps"`
	Seed              uint64   `yaml:"seed"`
}

// duration reads "30s", "5m".
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 5m", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// configFile is the --config file the flags named, after parse; "" when none.
func (f *flagSet) configFile() string {
	if fl := f.fs.Lookup("config"); fl != nil {
		return fl.Value.String()
	}
	return ""
}

// readModels reads the models section of the config file at path ("" or no section: none).
func readModels(path string) ([]modelConfig, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("config file: %v", err)
	}
	models, err := parseModels(data)
	if err != nil {
		return nil, usageErrorf("config file %s: %v", path, err)
	}
	return models, nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type main\.(\w+)`)

// parseModels decodes and checks the models section of a config file.
func parseModels(data []byte) ([]modelConfig, error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	node, ok := doc["models"]
	if !ok {
		return nil, nil
	}
	// Decode the section again through a strict decoder: yaml.v3 checks for unknown keys
	// only there.
	raw, err := yaml.Marshal(&node)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var models []modelConfig
	if err := dec.Decode(&models); err != nil && !errors.Is(err, io.EOF) {
		msg := unknownField.ReplaceAllString(err.Error(), "unknown key $1")
		// Line numbers are those of the re-encoded section; the key names the place.
		msg = regexp.MustCompile(`line \d+: `).ReplaceAllString(msg, "")
		return nil, fmt.Errorf("models: %s", oneLine(strings.TrimPrefix(msg, "yaml: unmarshal errors:")))
	}
	if models == nil {
		// A section that is there but empty (models: []) is not a missing one: serve then runs
		// no worker instead of serving the models directory.
		models = []modelConfig{}
	}
	names := map[string]bool{}
	for i, m := range models {
		if err := m.check(); err != nil {
			return nil, fmt.Errorf("models[%d]%s: %w", i, nameSuffix(m.Name), err)
		}
		if names[m.Name] {
			return nil, fmt.Errorf("models[%d].name: %q is listed twice", i, m.Name)
		}
		names[m.Name] = true
	}
	return models, nil
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}

// keyError names the key a value is wrong in.
func keyError(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}

func (m modelConfig) check() error {
	switch {
	case m.Name == "":
		return keyError("name", "is required")
	case m.Kind != string(worker.KindText) && m.Kind != string(worker.KindImage) && m.Kind != string(worker.KindEmbedding):
		return keyError("kind", "must be text, image or embedding (got %q)", m.Kind)
	case m.Slots < 1:
		return keyError("slots", "must be at least 1")
	case m.Limits.MaxTokens < 0, m.Limits.MaxContext < 0, m.Limits.MaxImageSide < 0, m.Limits.MaxImageSteps < 0:
		return keyError("limits", "must not be negative")
	case time.Duration(m.StreamInterval) > 10*time.Second:
		return keyError("stream-interval", "must be at most 10s")
	}
	sections := map[string]bool{"llama": m.Llama != nil, "diffusion": m.Diffusion != nil, "openai": m.OpenAI != nil, "image": m.Image != nil, "process": m.Process != nil, "sim": m.Sim != nil}
	for name, set := range sections {
		if set && name != m.Engine {
			return keyError(name, "is set but the engine is %q", m.Engine)
		}
	}
	switch m.Engine {
	case "llama":
		switch {
		case m.Llama == nil || strings.TrimSpace(m.Llama.Model) == "":
			return keyError("llama.model", "is required for engine llama (a .gguf file or a model name in the models directory)")
		case m.Llama.Threads < 0:
			return keyError("llama.threads", "must not be negative (0: one per CPU)")
		case m.Llama.Context < 0:
			return keyError("llama.context", "must not be negative (0: the model's)")
		case m.Llama.Sequences < 0:
			return keyError("llama.sequences", "must not be negative (0: slots)")
		case m.Kind != string(worker.KindText):
			return keyError("engine", "llama serves text models")
		}
	case "diffusion":
		d := m.Diffusion
		switch {
		case d == nil || strings.TrimSpace(d.Model) == "":
			return keyError("diffusion.model", "is required for engine diffusion (a .safetensors checkpoint or a model name in the models directory)")
		case d.Threads < 0:
			return keyError("diffusion.threads", "must not be negative (0: one per CPU)")
		case d.RNG != "" && d.RNG != rng.CUDA && d.RNG != rng.CPU:
			return keyError("diffusion.rng", "must be cuda or cpu (got %q)", d.RNG)
		case d.Prediction != "" && !slices.Contains(predictionNames, d.Prediction):
			return keyError("diffusion.prediction", "must be %s (got %q)", strings.Join(predictionNames, ", "), d.Prediction)
		case d.ClipSkip < 0:
			return keyError("diffusion.clip-skip", "must not be negative (0: the model family's default)")
		case d.Scheduler != "" && !slices.Contains(schedulerNames, d.Scheduler):
			return keyError("diffusion.scheduler", "must be %s (got %q)", strings.Join(schedulerNames, ", "), d.Scheduler)
		case m.Kind != string(worker.KindImage):
			return keyError("engine", "diffusion serves image models")
		}
	case "openai":
		if m.OpenAI == nil || m.OpenAI.BaseURL == "" {
			return keyError("openai.base-url", "is required for engine openai")
		}
		if err := checkHTTPURL(m.OpenAI.BaseURL); err != nil {
			return keyError("openai.base-url", "%v", err)
		}
		if m.Kind == string(worker.KindImage) {
			return keyError("engine", "openai serves text and embedding models")
		}
	case "image":
		switch {
		case m.Image == nil || m.Image.BaseURL == "":
			return keyError("image.base-url", "is required for engine image")
		case m.Image.API != imageup.APIA1111 && m.Image.API != imageup.APIOpenAI:
			return keyError("image.api", "must be a1111 or openai (got %q)", m.Image.API)
		case m.Kind != string(worker.KindImage):
			return keyError("engine", "image serves image models")
		}
		if err := checkHTTPURL(m.Image.BaseURL); err != nil {
			return keyError("image.base-url", "%v", err)
		}
	case "process":
		switch {
		case m.Process == nil || len(m.Process.Command) == 0:
			return keyError("process.command", "is required for engine process")
		case m.Process.Port < 0 || m.Process.Port > 65535:
			return keyError("process.port", "must be a port number (0: a free one)")
		case m.Kind == string(worker.KindImage):
			return keyError("engine", "process serves text and embedding models (an OpenAI-compatible server)")
		}
	case "sim":
	case "":
		return keyError("engine", "is required (%s)", strings.Join(engineNames, ", "))
	default:
		return keyError("engine", "must be one of %s (got %q)", strings.Join(engineNames, ", "), m.Engine)
	}
	return nil
}

// engineNames are the engines a model may name.
var engineNames = []string{"llama", "diffusion", "openai", "image", "process", "sim"}

// engineSet is the engines built from a models section.
type engineSet struct {
	models   []worker.Model
	engines  map[string]worker.Engine
	closers  []io.Closer
	starting []startingProcess // managed servers that may still be loading
	loads    *worker.EngineLoads
}

// startingProcess is a managed server and when it was started, for its load time.
type startingProcess struct {
	model string
	e     *process.Engine
	since time.Time
}

// engineEnv is what building engines needs besides the models section.
type engineEnv struct {
	modelsDir string                 // where a llama.model or diffusion.model that is not a file is looked up
	home      func() (string, error) // for a ~ in llama.model
	logger    *slog.Logger
	reg       prometheus.Registerer // the worker's registry
	// skipUnloadable turns a model the native engine cannot load into a log line (and a load
	// failure in the metrics) instead of an error: serve's models found in the models
	// directory, where one bad file must not keep the others from being served.
	skipUnloadable bool
}

// waitReady waits until every managed server is healthy, so the worker takes no job it would
// only hold while a model loads.
func (s *engineSet) waitReady(ctx context.Context, logger *slog.Logger) error {
	for _, p := range s.starting {
		logger.Info("waiting for an engine process to become healthy", "model", p.model, "port", p.e.Port())
		if err := p.e.WaitReady(ctx); err != nil {
			if ctx.Err() == nil {
				s.loads.Failed(p.model)
			}
			return fmt.Errorf("engine process: %w", err)
		}
		// The servers start together and are checked in turn, so a server found healthy after
		// a slower one counts up to that one's time: an upper bound.
		took := time.Since(p.since)
		s.loads.Loaded(p.model, took)
		logger.Info("engine process healthy", "model", p.model, "seconds", took.Seconds())
	}
	return nil
}

// Close stops every engine that holds resources.
func (s *engineSet) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// buildEngines makes the engine of every model.
func buildEngines(models []modelConfig, env engineEnv) (*engineSet, error) {
	loads, err := worker.NewEngineLoads(env.reg)
	if err != nil {
		return nil, err
	}
	logger := env.logger
	s := &engineSet{engines: map[string]worker.Engine{}, loads: loads}
	for _, m := range models {
		var eng worker.Engine
		limits := worker.Limits{MaxTokens: m.Limits.MaxTokens, MaxContext: m.Limits.MaxContext,
			MaxImageSide: m.Limits.MaxImageSide, MaxImageSteps: m.Limits.MaxImageSteps}
		switch m.Engine {
		case "llama":
			e, err := openLlama(m, env, loads)
			if err != nil && env.skipUnloadable {
				logger.Warn("skipping a model the native engine cannot load", "model", m.Name, "file", m.Llama.Model, "err", err)
				continue
			}
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
			// The context a sequence may hold is what the engine can run, whatever the limit says.
			if limits.MaxContext == 0 || limits.MaxContext > e.Context() {
				limits.MaxContext = e.Context()
			}
		case "diffusion":
			e, err := openDiffusion(m, env, loads)
			if err != nil && env.skipUnloadable {
				logger.Warn("skipping a model the native engine cannot load", "model", m.Name, "file", m.Diffusion.Model, "err", err)
				continue
			}
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
		case "openai":
			e, err := openaiup.New(m.OpenAI.engineConfig(m.Slots))
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
		case "image":
			ic := m.Image
			e, err := imageup.New(imageup.Config{API: ic.API, BaseURL: ic.BaseURL, APIKey: ic.APIKey, Model: ic.Model, Slots: m.Slots,
				ProgressInterval: time.Duration(ic.ProgressInterval), Timeout: time.Duration(ic.Timeout)})
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
		case "process":
			pc := m.Process
			served := pc.ServedModel
			if served == "" {
				served = m.Name
			}
			since := time.Now()
			e, err := process.Start(process.Config{Name: m.Name, Command: pc.Command, Model: pc.Model, Port: pc.Port, Dir: pc.Dir,
				Env: pc.Env, HealthPath: pc.HealthPath, StartTimeout: time.Duration(pc.StartTimeout), StopTimeout: time.Duration(pc.StopTimeout),
				Upstream: openaiup.Config{APIKey: pc.APIKey, Model: served, Slots: m.Slots, StallTimeout: time.Duration(pc.StallTimeout)},
				Logger:   logger.With("model", m.Name), Registerer: env.reg})
			if err != nil {
				loads.Failed(m.Name)
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
			s.starting = append(s.starting, startingProcess{model: m.Name, e: e, since: since})
		case "sim":
			var sc simConfig
			if m.Sim != nil {
				sc = *m.Sim
			}
			logger.Warn("model served by the sim engine: it generates made-up text, for load tests only", "model", m.Name)
			eng = sim.New(sim.Config{TimeToFirstToken: time.Duration(sc.TimeToFirstToken), InterTokenLatency: time.Duration(sc.InterTokenLatency),
				Tokens: sc.Tokens, EmbeddingDim: sc.EmbeddingDim, ImageStepTime: time.Duration(sc.ImageStepTime), ImageSteps: sc.ImageSteps, Seed: sc.Seed})
		}
		s.engines[m.Name] = eng
		if c, ok := eng.(io.Closer); ok {
			s.closers = append(s.closers, c)
		}
		s.models = append(s.models, worker.Model{Name: m.Name, Kind: worker.Kind(m.Kind), Engine: m.Engine, Slots: m.Slots,
			StreamInterval: time.Duration(m.StreamInterval), Limits: limits})
	}
	return s, nil
}

func (c *openaiConfig) engineConfig(slots int) openaiup.Config {
	return openaiup.Config{BaseURL: c.BaseURL, APIKey: c.APIKey, Model: c.Model, Slots: slots, HealthURL: c.HealthURL,
		StallTimeout: time.Duration(c.StallTimeout)}
}
