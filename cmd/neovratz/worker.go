package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/brokerhttp"
	"github.com/neovratz/neovratz/internal/telemetry"
	"github.com/neovratz/neovratz/internal/worker"
)

// workerConfig is the validated configuration of `neovratz worker`.
type workerConfig struct {
	RedisURL     string // pull jobs from Redis directly, or
	API          string // pull them from a remote API over HTTP
	Token        string // worker token for API
	ID           string
	Hardware     string
	DrainTimeout time.Duration
	MetricsAddr  string
	Lease        time.Duration // Redis only: as the API's --lease
	Retention    time.Duration // Redis only: as the API's --retention
	Log          logConfig
	Models       []modelConfig   // the config file's models section
	Dirs         modelsDirConfig // --data-dir and --models-dir as given
	ModelsDir    string          // absolute: where llama.model names are looked up

	// AdvertiseMetricsAddr is the metrics address put in the registry, for Prometheus; empty:
	// MetricsAddr, with this host's name when it has no host or an unspecified one.
	AdvertiseMetricsAddr string
}

// workerCommand runs a GPU worker.
type workerCommand struct{ m *Main }

func (c *workerCommand) flags(cfg *workerConfig) *flagSet {
	f := newFlagSet("worker", "--config FILE (--redis-url URL | --api URL --token TOKEN) [flags]", `
Runs a worker: it pulls jobs for the models it serves, either from Redis (--redis-url) or from a
remote API with a worker token (--api and --token, for a worker that cannot reach Redis), runs
them on its engines and streams the results back. SIGTERM or SIGINT drains it: no new jobs,
running jobs get --drain-timeout to finish, the rest go back to the queue; a second signal exits
at once.

The models it serves are the "models" section of the --config file:

  models:
    - name: llama-3.1-8b          # the model name clients ask for
      kind: text                  # text, image or embedding
      slots: 8                    # jobs it runs at once
      limits: {max-tokens: 4096, max-context: 8192}
      engine: openai              # llama (native, CPU), openai, image (A1111 or OpenAI images), process, sim
      openai: {base-url: "http://127.0.0.1:8000/v1", model: meta-llama/Llama-3.1-8B-Instruct}
    - name: qwen2.5-0.5b
      kind: text
      slots: 4
      engine: llama               # a GGUF file, or a model name in the models directory
      llama: {model: qwen2.5-0.5b-instruct-q8_0}
`)
	var config string
	f.Config(&config)
	f.Section("models")
	f.String(&cfg.RedisURL, "redis-url", "", "Redis URL (redis://host:6379/0) to pull jobs from", checkRedisURL)
	f.String(&cfg.API, "api", "", "base URL of a neovratz API to pull jobs from over HTTP, instead of Redis", checkHTTPURL)
	f.String(&cfg.Token, "token", "", "worker token for --api (prefer the environment variable to the command line)", nil)
	f.String(&cfg.ID, "id", "", "this worker's id, unique among workers", nil)
	f.showDefault("id", "<hostname>-<random>")
	f.String(&cfg.Hardware, "hardware", "", "hardware summary shown in the worker registry", nil)
	f.showDefault("hardware", "CPU count and platform")
	f.Duration(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "on shutdown, how long running jobs may finish before they are handed back")
	f.String(&cfg.MetricsAddr, "metrics-addr", "", "address to serve /metrics and /healthz on (empty: no metrics server)", checkOptionalAddr)
	f.String(&cfg.AdvertiseMetricsAddr, "advertise-metrics-addr", "", "host:port Prometheus reaches --metrics-addr at, put in the worker registry for service discovery (empty: --metrics-addr, with this host's name for 0.0.0.0 or no host)", checkAdvertiseAddr)
	f.Duration(&cfg.Lease, "lease", 30*time.Second, "with --redis-url: how long a job is held between lease extensions; use the API's --lease")
	f.Duration(&cfg.Retention, "retention", 24*time.Hour, "with --redis-url: how long finished jobs are kept; use the API's --retention")
	cfg.Dirs.define(f)
	cfg.Log.define(f)
	return f
}

func (c *workerCommand) parse(args []string) (workerConfig, error) {
	var cfg workerConfig
	f := c.flags(&cfg)
	if err := f.parse(args, c.m.getenv); err != nil {
		return cfg, err
	}
	switch {
	case cfg.RedisURL == "" && cfg.API == "":
		return cfg, usageErrorf("one of --redis-url or --api is required")
	case cfg.RedisURL != "" && cfg.API != "":
		return cfg, usageErrorf("--redis-url and --api exclude each other")
	case cfg.API != "" && cfg.Token == "":
		return cfg, usageErrorf("--api needs --token (or %s)", envVar("token"))
	case cfg.API == "" && cfg.Token != "":
		return cfg, usageErrorf("--token is only used with --api")
	case cfg.AdvertiseMetricsAddr != "" && cfg.MetricsAddr == "":
		return cfg, usageErrorf("--advertise-metrics-addr needs --metrics-addr")
	}
	models, err := readModels(f.configFile())
	if err != nil {
		return cfg, err
	}
	if len(models) == 0 {
		return cfg, usageErrorf("no models to serve: list them in the models section of the --config file")
	}
	cfg.Models = models
	// Only the native engine looks models up by name: a worker of upstream engines needs no
	// home directory.
	if slices.ContainsFunc(models, func(m modelConfig) bool { return m.Engine == "llama" }) {
		if cfg.ModelsDir, err = cfg.Dirs.dir(c.m); err != nil {
			return cfg, err
		}
	}
	if cfg.ID == "" {
		cfg.ID = newWorkerID()
	}
	if cfg.Hardware == "" {
		cfg.Hardware = fmt.Sprintf("%d CPUs, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	}
	return cfg, nil
}

func (c *workerCommand) Usage(w io.Writer) { c.flags(&workerConfig{}).Usage(w) }

func (c *workerCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	logger := cfg.Log.newLogger(c.m.Stdout)
	reg := telemetry.NewRegistry()
	gpus := telemetry.NewGPUCollector(logger) // logs once and collects nothing without NVML
	defer gpus.Close()
	reg.MustRegister(gpus)
	engines, err := buildEngines(cfg.Models, engineEnv{modelsDir: cfg.ModelsDir, home: c.m.homeDir, logger: logger, reg: reg})
	if err != nil {
		return err
	}
	defer func() {
		if err := engines.Close(); err != nil {
			logger.Error("stop engines", "err", err)
		}
	}()

	if err := engines.waitReady(ctx, logger); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	b, closeBroker, err := workerBroker(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeBroker()
	host, _ := os.Hostname()
	w, err := worker.New(worker.Config{ID: cfg.ID, Hostname: host, Version: version, Hardware: cfg.Hardware,
		MetricsAddr: cfg.advertisedMetricsAddr(host), Models: engines.models, DrainTimeout: cfg.DrainTimeout},
		b, engines.engines, logger, reg, nil)
	if err != nil {
		return err
	}
	logger.Info("starting", "command", "worker", "version", version, "id", cfg.ID, "models", len(engines.models))

	// The metrics server outlives the drain, so the drain can be watched.
	mctx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	metricsDone := make(chan error, 1)
	if cfg.MetricsAddr != "" {
		go func() { metricsDone <- serveHTTP(mctx, cfg.MetricsAddr, w.Handler(), logger) }()
	} else {
		metricsDone <- nil
	}
	err = w.Run(ctx)
	stopMetrics()
	if merr := <-metricsDone; err == nil && merr != nil {
		err = merr
	}
	return err
}

// newWorkerID is the default worker id: the host name and a random suffix, so that two workers
// on one host never share an id.
func newWorkerID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s", host, hex.EncodeToString(b[:]))
}

// workerBroker connects to where jobs come from: Redis, or a remote API over HTTP.
func workerBroker(ctx context.Context, cfg workerConfig, logger *slog.Logger) (worker.Broker, func(), error) {
	if cfg.API != "" {
		return brokerhttp.NewClient(cfg.API, cfg.Token, nil), func() {}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL) // validated with the flag
	if err != nil {
		return nil, nil, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	b, err := redisbroker.New(ctx, rdb, redisbroker.Options{Config: broker.Config{Lease: cfg.Lease, Retention: cfg.Retention}, Logger: logger})
	if err != nil {
		rdb.Close()
		// The URL may hold a password: name only the address.
		return nil, nil, fmt.Errorf("open redis broker at %s: %w", opts.Addr, err)
	}
	return b, func() { b.Close(); rdb.Close() }, nil
}

// advertisedMetricsAddr is the metrics address the worker registers: --advertise-metrics-addr,
// or else the listen address as other hosts reach it.
func (cfg workerConfig) advertisedMetricsAddr(host string) string {
	if cfg.AdvertiseMetricsAddr != "" {
		return cfg.AdvertiseMetricsAddr
	}
	return advertised(cfg.MetricsAddr, host)
}

// advertised is the metrics address other hosts reach: a listen address without a host gets
// this host's name.
func advertised(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil || (h != "" && h != "0.0.0.0" && h != "::") {
		return addr
	}
	return net.JoinHostPort(host, port)
}
