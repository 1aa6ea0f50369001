// Package process is the managed process engine: the worker starts the inference server itself
// (llama-server, vllm serve, an sd.cpp server…) from the command in its config, waits until the
// server answers its health endpoint, restarts it with exponential backoff when it dies, and
// stops it (SIGTERM, then SIGKILL) when the worker exits. Requests go to the server through an
// openaiup engine; a job in flight when the server dies fails as retryable, so it runs again
// once the server is back (or on another worker).
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/engine/openaiup"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/worker"
)

// Config configures a managed process. Zero values take the defaults.
type Config struct {
	// Name names the engine in logs and metrics (the model it serves).
	Name string
	// Command is the program and its arguments. "{model}" and "{port}" in any of them are
	// replaced by Model and the port the server must listen on.
	Command []string
	Model   string
	// Port is the port the server listens on; 0 picks a free one at start.
	Port int
	Dir  string   // working directory; "" = the worker's
	Env  []string // extra environment variables, KEY=VALUE
	// HealthPath is what must answer 2xx on http://127.0.0.1:PORT before requests go there.
	// Default "/health" (llama-server, vLLM).
	HealthPath string
	// StartTimeout is how long the server may take to become healthy (loading a model can take
	// minutes) before it is killed and started again. Default 10m.
	StartTimeout time.Duration
	// StopTimeout is how long the server has to exit after SIGTERM before SIGKILL. Default 10s.
	StopTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart; it doubles after each crash
	// and starts over once the server stayed up for a minute. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// Upstream configures the requests to the server. BaseURL defaults to
	// http://127.0.0.1:PORT/v1; "{port}" in it is replaced.
	Upstream openaiup.Config
	Logger   *slog.Logger
	// Registerer receives neovratz_worker_engine_restarts_total; nil: not registered.
	Registerer prometheus.Registerer
}

// Engine is a managed process. Create it with Start; Close stops the process.
type Engine struct {
	cfg  Config
	port int
	up   *openaiup.Engine
	log  *slog.Logger

	restarts prometheus.Counter

	mu    sync.Mutex
	ready chan struct{} // closed while the server is healthy; replaced when it dies
	pid   int

	stop context.CancelFunc
	done chan struct{} // closed when the supervisor has stopped the process
}

// stableAfter is how long a server must stay up for the backoff to start over.
const stableAfter = time.Minute

// Start checks cfg, starts the process and its supervisor, and returns at once; WaitReady waits
// until the server is healthy.
func Start(cfg Config) (*Engine, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("process engine: command is required")
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = "/health"
	}
	if !strings.HasPrefix(cfg.HealthPath, "/") {
		cfg.HealthPath = "/" + cfg.HealthPath
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Minute
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	port := cfg.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, fmt.Errorf("process engine: pick a port: %w", err)
		}
	}
	upCfg := cfg.Upstream
	if upCfg.BaseURL == "" {
		upCfg.BaseURL = "http://127.0.0.1:{port}/v1"
	}
	upCfg.BaseURL = strings.ReplaceAll(upCfg.BaseURL, "{port}", strconv.Itoa(port))
	upCfg.HealthURL = strings.ReplaceAll(upCfg.HealthURL, "{port}", strconv.Itoa(port))
	up, err := openaiup.New(upCfg)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, port: port, up: up, log: cfg.Logger.With("engine", "process", "name", cfg.Name),
		ready: make(chan struct{}), done: make(chan struct{})}
	e.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "neovratz_worker_engine_restarts_total",
		Help:        "Times a managed engine process died and was started again.",
		ConstLabels: prometheus.Labels{"engine": cfg.Name},
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(e.restarts); err != nil {
			return nil, fmt.Errorf("process engine: register metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go e.supervise(ctx)
	return e, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Port is the port the server listens on.
func (e *Engine) Port() int { return e.port }

// WaitReady waits until the server is healthy or ctx ends.
func (e *Engine) WaitReady(ctx context.Context) error {
	e.mu.Lock()
	ready := e.ready
	e.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-e.done:
		return errors.New("engine process stopped")
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (e *Engine) isReady() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// GenerateText waits for the server and streams the request from it. An error while the server
// died or restarted is retryable.
func (e *Engine) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	if err := e.WaitReady(ctx); err != nil {
		return inference.TextResult{}, e.unavailable(ctx, err)
	}
	res, err := e.up.GenerateText(ctx, req, emit)
	if err != nil && ctx.Err() == nil && !e.isReady() {
		err = worker.Retryable(fmt.Errorf("engine process died: %w", err))
	}
	return res, err
}

// Embed waits for the server and asks it for embeddings.
func (e *Engine) Embed(ctx context.Context, req inference.EmbeddingRequest) (inference.EmbeddingResult, error) {
	if err := e.WaitReady(ctx); err != nil {
		return inference.EmbeddingResult{}, e.unavailable(ctx, err)
	}
	res, err := e.up.Embed(ctx, req)
	if err != nil && ctx.Err() == nil && !e.isReady() {
		err = worker.Retryable(fmt.Errorf("engine process died: %w", err))
	}
	return res, err
}

func (e *Engine) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return worker.Retryable(err)
}

// Health reports whether the server is up and answers.
func (e *Engine) Health(ctx context.Context) error {
	if !e.isReady() {
		return errors.New("engine process is starting")
	}
	return e.up.Health(ctx)
}

// Close stops the server — SIGTERM, then SIGKILL after StopTimeout — and the supervisor.
func (e *Engine) Close() error {
	e.stop()
	<-e.done
	return nil
}
