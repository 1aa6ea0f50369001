// Package worker runs jobs on engines: it registers with a broker, reserves jobs for the models
// it serves (never more than it has free slots for), runs each on the model's engine while it
// extends the job's lease and streams deltas and progress into the job's event log, aborts at
// once when the job is canceled, and completes or fails the job. On shutdown it drains: it stops
// reserving, lets running jobs finish up to a timeout and hands the rest back to the queue.
//
// The engine interfaces (TextEngine, ImageEngine, EmbeddingEngine) and the broker interface
// (Broker) are defined here, where they are used; engines live in packages under internal/engine.
package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Kind is what a model does.
type Kind string

// The kinds of model. A text model runs chat and completion jobs.
const (
	KindText      Kind = "text"
	KindImage     Kind = "image"
	KindEmbedding Kind = "embedding"
)

// serves reports whether a model of kind k runs jobs of kind jk.
func (k Kind) serves(jk job.Kind) bool {
	switch k {
	case KindText:
		return jk == job.KindChat || jk == job.KindCompletion
	case KindImage:
		return jk == job.KindImage
	case KindEmbedding:
		return jk == job.KindEmbedding
	}
	return false
}

// Model is one model the worker serves.
type Model struct {
	Name   string // the model name clients ask for
	Kind   Kind
	Engine string // the engine's name, for the registry and logs ("openai", "sim", …)
	Slots  int    // how many of its jobs may run at once; at least 1
	Limits Limits
	// StreamInterval is the least time between two writes of a job's deltas or progress after
	// the first, which goes out at once. What the engine emits meanwhile is merged into the
	// next write. 0 writes as soon as the previous write is done: every token is its own event
	// unless the broker is slower than the engine. A few tens of milliseconds cut the broker's
	// work per job several times over for fast engines, at no cost to the time to first token.
	StreamInterval time.Duration
}

// Limits bound what one job of a model may ask. Zero means no limit beyond the API's own.
type Limits struct {
	// MaxTokens is the most tokens one text job may generate: a request without max_tokens gets
	// it, a request asking for more fails as a bad request.
	MaxTokens int
	// MaxContext is the model's context length in tokens; max_tokens may not exceed it.
	MaxContext int
	// MaxImageSide is the largest width or height of an image, in pixels.
	MaxImageSide int
	// MaxImageSteps is the most diffusion steps of an image.
	MaxImageSteps int
}

// Config is the worker's configuration, validated by New.
type Config struct {
	ID          string // unique among workers; also the broker's consumer name
	Hostname    string
	Version     string
	Hardware    string // a summary for the registry, such as "1x NVIDIA H100 80GB"
	MetricsAddr string // where this worker's /metrics is reachable, for service discovery
	Models      []Model

	// DrainTimeout is how long running jobs may finish after Run's context ends before they are
	// handed back to the queue. Default 30s.
	DrainTimeout time.Duration
	// HeartbeatInterval is how often the worker tells the registry it is alive. Default 10s (a
	// third of the broker's default worker TTL).
	HeartbeatInterval time.Duration
	// ExtendInterval is how often a running job's lease is extended. Default: a third of the
	// lease's length as the broker handed it out.
	ExtendInterval time.Duration
	// CancelPollWait is the longest a cancellation watch waits on a job's event log in one call.
	// Default 10s.
	CancelPollWait time.Duration
}

func (c Config) withDefaults() Config {
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.CancelPollWait <= 0 {
		c.CancelPollWait = 10 * time.Second
	}
	return c
}

// Worker runs jobs from a broker on engines. Create it with New and start it with Run.
type Worker struct {
	cfg     Config
	broker  Broker
	models  map[string]*model
	logger  *slog.Logger
	metrics *metrics
	reg     prometheus.Registerer
	now     func() time.Time

	startedAt time.Time
	// cancels watches the running jobs for cancellation when the broker is a CancelChecker;
	// nil otherwise (each job then watches its own event log).
	cancels *cancelWatcher

	mu            sync.Mutex
	lastHeartbeat time.Time // last successful register or heartbeat
	draining      bool
	stopReserving func() // set by Run
}

// model is a served model with its engine and slot accounting.
type model struct {
	Model
	engine Engine
	// slots holds a token per running job; a reserver takes as many jobs as there are free
	// places, so a busy worker never holds a queued job another worker could run.
	slots chan struct{}
}

// New checks cfg and returns a worker that serves cfg.Models with the engines given by model
// name. reg receives the worker's metrics (nil: none are registered); now is the clock (nil:
// time.Now).
func New(cfg Config, b Broker, engines map[string]Engine, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Worker, error) {
	cfg = cfg.withDefaults()
	if cfg.ID == "" {
		return nil, errors.New("worker id is required")
	}
	if b == nil {
		return nil, errors.New("broker is required")
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("no models to serve")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	w := &Worker{cfg: cfg, broker: b, models: map[string]*model{}, logger: logger.With("worker", cfg.ID), now: now}
	if cc, ok := b.(CancelChecker); ok {
		w.cancels = newCancelWatcher(cc, w.logger)
	}
	for i, m := range cfg.Models {
		if err := checkModel(m, engines[m.Name]); err != nil {
			return nil, fmt.Errorf("models[%d] (%s): %w", i, m.Name, err)
		}
		if _, dup := w.models[m.Name]; dup {
			return nil, fmt.Errorf("models[%d]: model %q is listed twice", i, m.Name)
		}
		w.models[m.Name] = &model{Model: m, engine: engines[m.Name], slots: make(chan struct{}, m.Slots)}
	}
	m, err := newMetrics(reg, cfg.Models)
	if err != nil {
		return nil, err
	}
	w.metrics, w.reg = m, reg
	return w, nil
}

func checkModel(m Model, e Engine) error {
	if m.Name == "" {
		return errors.New("name is required")
	}
	if m.Slots < 1 {
		return fmt.Errorf("slots must be at least 1 (got %d)", m.Slots)
	}
	if m.StreamInterval < 0 || m.StreamInterval > 10*time.Second {
		return fmt.Errorf("stream interval must be between 0 and 10s (got %v)", m.StreamInterval)
	}
	if e == nil {
		return errors.New("no engine")
	}
	var ok bool
	switch m.Kind {
	case KindText:
		_, ok = e.(TextEngine)
	case KindImage:
		_, ok = e.(ImageEngine)
	case KindEmbedding:
		_, ok = e.(EmbeddingEngine)
	default:
		return fmt.Errorf("kind must be text, image or embedding (got %q)", m.Kind)
	}
	if !ok {
		return fmt.Errorf("engine %s (%T) cannot serve %s models", m.Engine, e, m.Kind)
	}
	return nil
}

// info is the worker's registry entry.
func (w *Worker) info() broker.WorkerInfo {
	names := make([]string, 0, len(w.cfg.Models))
	infos := make([]broker.ModelInfo, 0, len(w.cfg.Models))
	var engines []string
	slots := 0
	for _, m := range w.cfg.Models {
		names = append(names, m.Name)
		infos = append(infos, broker.ModelInfo{Name: m.Name, Kind: string(m.Kind), ContextLength: m.Limits.MaxContext})
		slots += m.Slots
		if m.Engine != "" && !slices.Contains(engines, m.Engine) {
			engines = append(engines, m.Engine)
		}
	}
	w.mu.Lock()
	draining := w.draining
	w.mu.Unlock()
	return broker.WorkerInfo{ID: w.cfg.ID, Hostname: w.cfg.Hostname, Version: w.cfg.Version, Models: names,
		Slots: slots, Engine: strings.Join(engines, ","), Hardware: w.cfg.Hardware,
		MetricsAddr: w.cfg.MetricsAddr, Draining: draining, StartedAt: w.startedAt, ModelInfo: infos}
}
