package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/neovratz/neovratz/internal/telemetry"
)

// serveConfig is the validated configuration of `neovratz serve`.
type serveConfig struct {
	Addr      string // HTTP listen address
	DataDir   string // absolute; holds broker.db
	ModelsDir string // absolute; default <DataDir>/models
	Log       logConfig
	Broker    brokerConfig
	API       apiServerConfig
	// Models is the models section of the --config file, which a worker inside this process
	// serves; nil when the file has no such section: the worker then serves the models
	// directory. An empty section (models: []) runs no worker.
	Models []modelConfig
}

// serveCommand runs the API, the broker and a worker in one process.
type serveCommand struct{ m *Main }

func (c *serveCommand) flags(cfg *serveConfig) *flagSet {
	f := newFlagSet("serve", "[flags]", `
Runs neovratz in one process: the HTTP server and the broker — the embedded SQLite broker in
<data-dir>/broker.db, or Redis when --redis-url is given. No other service is needed.

API keys live in <data-dir>/keys.db, pending webhook deliveries in <data-dir>/outbox.db (both
in Redis with --redis-url). A worker in this process serves every GGUF model of --models-dir on
the native engine ('neovratz pull' puts them there), each under its name; when the --config file
has a "models" section (the same as 'neovratz worker' reads), it serves those models instead
("models: []" for none, when workers run elsewhere).
`)
	var config string
	f.Config(&config)
	f.Section("models")
	f.String(&cfg.Addr, "addr", "127.0.0.1:8080", "address the HTTP server listens on (port 0 picks a free port)", checkAddr)
	f.String(&cfg.DataDir, "data-dir", "~/.neovratz", "directory for the embedded broker's database and other state", nil)
	f.String(&cfg.ModelsDir, "models-dir", "", "directory of model files", nil)
	f.showDefault("models-dir", "<data-dir>/models")
	cfg.Log.define(f)
	cfg.Broker.define(f, "Redis URL (redis://host:6379/0); when set, Redis is the broker instead of the embedded one")
	cfg.API.define(f)
	return f
}

// parse turns the command line and environment (and the config file they name) into a
// validated serveConfig.
func (c *serveCommand) parse(args []string) (serveConfig, error) {
	var cfg serveConfig
	f := c.flags(&cfg)
	if err := f.parse(args, c.m.getenv); err != nil {
		return cfg, err
	}
	var err error
	if cfg.DataDir, err = expandHome(cfg.DataDir, c.m.homeDir); err != nil {
		return cfg, usageErrorf("--data-dir: %v", err)
	}
	if cfg.ModelsDir == "" {
		cfg.ModelsDir = filepath.Join(cfg.DataDir, "models")
	} else if cfg.ModelsDir, err = expandHome(cfg.ModelsDir, c.m.homeDir); err != nil {
		return cfg, usageErrorf("--models-dir: %v", err)
	}
	if cfg.Broker.RedisURL == "" && cfg.Broker.RedisDurable {
		return cfg, usageErrorf("--redis-durable needs --redis-url")
	}
	if cfg.Broker.RedisURL == "" {
		cfg.Broker.SQLitePath = filepath.Join(cfg.DataDir, "broker.db")
	}
	if cfg.Models, err = readModels(f.configFile()); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (c *serveCommand) Usage(w io.Writer) { c.flags(&serveConfig{}).Usage(w) }

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	logger := cfg.Log.newLogger(c.m.Stdout)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	b, err := openBroker(ctx, cfg.Broker, logger)
	if err != nil {
		return err
	}
	defer closeBroker(b, logger)
	logger.Info("starting", "command", "serve", "version", version, "broker", b.kind,
		"data_dir", cfg.DataDir, "models_dir", cfg.ModelsDir)
	reg := telemetry.NewRegistry() // the API's and the built-in worker's metrics, on one /metrics
	stopWorker, err := startLocalWorker(ctx, cfg, b, reg, c.m.homeDir, logger)
	if err != nil {
		return err
	}
	defer stopWorker()
	return c.m.runAPI(ctx, cfg.Addr, cfg.API, b, cfg.DataDir, reg, logger)
}
