package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/neovratz/neovratz/internal/engine/openaiup"
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
//	    engine: openai                # openai, sim (load tests only)
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

	OpenAI *openaiConfig `yaml:"openai"`
	Sim    *simConfig    `yaml:"sim"`
}

type limitsConfig struct {
	MaxTokens     int `yaml:"max-tokens"`
	MaxContext    int `yaml:"max-context"`
	MaxImageSide  int `yaml:"max-image-side"`
	MaxImageSteps int `yaml:"max-image-steps"`
}

type openaiConfig struct {
	BaseURL      string   `yaml:"base-url"`
	APIKey       string   `yaml:"api-key"`
	Model        string   `yaml:"model"`
	HealthURL    string   `yaml:"health-url"`
	StallTimeout duration `yaml:"stall-timeout"`
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
	}
	sections := map[string]bool{"openai": m.OpenAI != nil, "sim": m.Sim != nil}
	for name, set := range sections {
		if set && name != m.Engine {
			return keyError(name, "is set but the engine is %q", m.Engine)
		}
	}
	switch m.Engine {
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
	case "sim":
	case "":
		return keyError("engine", "is required (openai or sim)")
	default:
		return keyError("engine", "must be openai or sim (got %q)", m.Engine)
	}
	return nil
}

// engineSet is the engines built from a models section.
type engineSet struct {
	models  []worker.Model
	engines map[string]worker.Engine
	closers []io.Closer
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
func buildEngines(models []modelConfig, logger *slog.Logger, reg prometheus.Registerer) (*engineSet, error) {
	s := &engineSet{engines: map[string]worker.Engine{}}
	for _, m := range models {
		var eng worker.Engine
		switch m.Engine {
		case "openai":
			e, err := openaiup.New(m.OpenAI.engineConfig(m.Slots))
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("model %s: %w", m.Name, err)
			}
			eng = e
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
			Limits: worker.Limits{MaxTokens: m.Limits.MaxTokens, MaxContext: m.Limits.MaxContext,
				MaxImageSide: m.Limits.MaxImageSide, MaxImageSteps: m.Limits.MaxImageSteps}})
	}
	return s, nil
}

func (c *openaiConfig) engineConfig(slots int) openaiup.Config {
	return openaiup.Config{BaseURL: c.BaseURL, APIKey: c.APIKey, Model: c.Model, Slots: slots, HealthURL: c.HealthURL,
		StallTimeout: time.Duration(c.StallTimeout)}
}
