package main

import (
	"context"
	"io"

	"github.com/neovratz/neovratz/internal/telemetry"
)

// apiConfig is the validated configuration of `neovratz api`.
type apiConfig struct {
	Addr   string // HTTP listen address
	Log    logConfig
	Broker brokerConfig // RedisURL is required
	API    apiServerConfig
}

// apiCommand runs the stateless API service against Redis.
type apiCommand struct{ m *Main }

func (c *apiCommand) flags(cfg *apiConfig) *flagSet {
	f := newFlagSet("api", "--redis-url URL [flags]", `
Runs the API service: stateless, so run as many as needed behind a load balancer, all sharing
one Redis (--redis-url is required).
`)
	var config string
	f.Config(&config)
	f.String(&cfg.Addr, "addr", "127.0.0.1:8080", "address the HTTP server listens on (port 0 picks a free port)", checkAddr)
	cfg.Log.define(f)
	cfg.Broker.define(f, "Redis URL (redis://host:6379/0) of the broker; required")
	cfg.API.define(f)
	return f
}

func (c *apiCommand) parse(args []string) (apiConfig, error) {
	var cfg apiConfig
	if err := c.flags(&cfg).parse(args, c.m.getenv); err != nil {
		return cfg, err
	}
	if cfg.Broker.RedisURL == "" {
		return cfg, usageErrorf("--redis-url (or %s) is required", envVar("redis-url"))
	}
	return cfg, nil
}

func (c *apiCommand) Usage(w io.Writer) { c.flags(&apiConfig{}).Usage(w) }

func (c *apiCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	logger := cfg.Log.newLogger(c.m.Stdout)
	b, err := openBroker(ctx, cfg.Broker, logger)
	if err != nil {
		return err
	}
	defer closeBroker(b, logger)
	logger.Info("starting", "command", "api", "version", version, "broker", b.kind)
	return c.m.runAPI(ctx, cfg.Addr, cfg.API, b, "", telemetry.NewRegistry(), logger)
}
