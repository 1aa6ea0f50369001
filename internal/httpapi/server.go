// Package httpapi is neovratz's HTTP API: the OpenAI-compatible inference endpoints, async
// jobs, key and queue administration, and the operational endpoints (health, metrics, version,
// OpenAPI document).
//
// Every inference request becomes a job on the broker; a synchronous call enqueues its job and
// follows the job's event log until the job ends, streaming deltas as server-sent events when
// asked. Handlers return errors (tsweb style): an *Error carries the status and the message the
// client may see, anything else becomes a 500 whose cause goes only to the log.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/outbox"
	"github.com/neovratz/neovratz/internal/telemetry"
)

// Broker is what the API needs of a broker (see package broker for the contract).
type Broker interface {
	Enqueue(ctx context.Context, j job.Job) (job.Job, bool, error)
	Cancel(ctx context.Context, id string) (job.Job, error)
	Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error)
	Get(ctx context.Context, id string) (job.Job, error)
	List(ctx context.Context, f broker.ListFilter) ([]job.Job, string, error)
	QueueStats(ctx context.Context) ([]broker.QueueStats, error)
	DeadLetters(ctx context.Context, limit int) ([]job.Job, error)
	Requeue(ctx context.Context, id string) (job.Job, error)
	RegisterWorker(ctx context.Context, w broker.WorkerInfo) error
	Workers(ctx context.Context) ([]broker.WorkerInfo, error)
	Ping(ctx context.Context) error
}

// Config configures a Server. Broker, Logger and Registry are required; Keys, Limiter and Slots
// are required unless AuthDisabled.
type Config struct {
	Broker   Broker
	Logger   *slog.Logger
	Registry *prometheus.Registry

	// Keys authenticates requests. AuthDisabled lets every request in as an anonymous key with
	// every scope (local development only).
	Keys         *auth.Keys
	AuthDisabled bool
	// Limiter enforces requests and tokens per minute; Slots enforces concurrent jobs.
	Limiter auth.Limiter
	Slots   auth.Slots

	// URLKey signs the image URLs the API hands out (response_format url). Every replica must
	// share it; a random one is made when it is empty (URLs then die with the process).
	URLKey []byte
	// PublicURL is the base of URLs the API hands out (https://api.example.com); empty: the
	// scheme and host of each request.
	PublicURL string

	// WorkerHandler, when set, serves workers over HTTP under /v1/worker/ behind a key with the
	// worker scope. It sees the full request path.
	WorkerHandler http.Handler

	// Version is what /version serves as JSON.
	Version any

	MaxBodyBytes int64         // request bodies larger than this get 413; default 9 MiB
	SyncTimeout  time.Duration // a synchronous call's limit, queue wait included; default 10m
	// AsyncDeadline is how long an async job may wait in the queue before it expires; default 24h.
	AsyncDeadline time.Duration
	// KeepAlive is how often an idle SSE stream gets a comment, so proxies keep it open; default 15s.
	KeepAlive time.Duration
	// WorkerCacheTTL is how long the list of live workers is reused between requests; default 1s.
	WorkerCacheTTL time.Duration

	Webhooks WebhookConfig
	// Outbox keeps the end-of-job work of async jobs (webhook deliveries, token charges) until
	// it is done. Replicas must share one durable store (outbox.Redis, outbox.SQLite) for that
	// work to survive a replica's stop; default an in-memory one, lost with the process.
	Outbox outbox.Store

	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 9 << 20 // a job's input may be 8 MiB, plus its envelope
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 10 * time.Minute
	}
	if c.AsyncDeadline <= 0 {
		c.AsyncDeadline = 24 * time.Hour
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.WorkerCacheTTL <= 0 {
		c.WorkerCacheTTL = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Webhooks = c.Webhooks.withDefaults()
	return c
}

// Server is the API. Create it with New, serve Handler, and Close it after the HTTP server has
// shut down.
type Server struct {
	cfg     Config
	b       Broker
	log     *slog.Logger
	metrics *metrics
	sd      *telemetry.ServiceDiscovery
	models  *catalog
	hooks   *webhooks
	routes  []route
	handler http.Handler
}

// New returns a Server for cfg. It starts the pool that does the end-of-job work of async jobs
// (webhooks, token charges), which Close stops.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Broker == nil:
		return nil, errors.New("httpapi: Config.Broker is required")
	case cfg.Logger == nil:
		return nil, errors.New("httpapi: Config.Logger is required")
	case cfg.Registry == nil:
		return nil, errors.New("httpapi: Config.Registry is required")
	case !cfg.AuthDisabled && (cfg.Keys == nil || cfg.Limiter == nil || cfg.Slots == nil):
		return nil, errors.New("httpapi: Config.Keys, Limiter and Slots are required unless AuthDisabled")
	}
	if len(cfg.URLKey) == 0 {
		cfg.URLKey = randomBytes(32)
	}
	if cfg.Limiter == nil {
		cfg.Limiter = auth.NewMemoryLimiter(cfg.Now)
	}
	if cfg.Slots == nil {
		cfg.Slots = auth.NewMemorySlots(cfg.Now)
	}
	if cfg.Outbox == nil {
		cfg.Outbox = outbox.NewMemory()
	}
	m, err := newMetrics(cfg.Registry, cfg.Broker)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, b: cfg.Broker, log: cfg.Logger, metrics: m, sd: telemetry.NewServiceDiscovery(cfg.Broker, cfg.Logger)}
	s.models = newCatalog(cfg.Broker, cfg.WorkerCacheTTL, cfg.Now)
	s.hooks = newWebhooks(s, cfg.Webhooks, cfg.Outbox)
	s.routes = s.routeTable()
	s.handler = s.buildHandler()
	return s, nil
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the end-of-job pool; the work it was doing goes back to the outbox for another
// replica (or this one, restarted) to finish. Call it after the HTTP server has shut down and
// before closing the outbox.
func (s *Server) Close() error {
	s.hooks.close()
	return nil
}
