package main

import (
	"context"
	"errors"
	"io"
	"time"
)

// workerConfig is the validated configuration of `neovratz worker`.
type workerConfig struct {
	RedisURL     string // pull jobs from Redis directly, or
	API          string // pull them from a remote API over HTTP
	Token        string // worker token for API
	DrainTimeout time.Duration
	MetricsAddr  string
	Log          logConfig
}

// workerCommand will run a GPU worker. Only its configuration exists so far.
type workerCommand struct{ m *Main }

func (c *workerCommand) flags(cfg *workerConfig) *flagSet {
	f := newFlagSet("worker", "(--redis-url URL | --api URL --token TOKEN) [flags]", `
Runs a worker: it pulls jobs for the models it serves, either from Redis (--redis-url) or from a
remote API with a worker token (--api and --token, for a worker that cannot reach Redis), runs
them on its engines and streams the results back.

Not implemented yet: the command checks its configuration and exits with status 1.
`)
	var config string
	f.Config(&config)
	f.String(&cfg.RedisURL, "redis-url", "", "Redis URL (redis://host:6379/0) to pull jobs from", checkRedisURL)
	f.String(&cfg.API, "api", "", "base URL of a neovratz API to pull jobs from over HTTP, instead of Redis", checkHTTPURL)
	f.String(&cfg.Token, "token", "", "worker token for --api (prefer the environment variable to the command line)", nil)
	f.Duration(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "on shutdown, how long running jobs may finish before they are handed back")
	f.String(&cfg.MetricsAddr, "metrics-addr", "", "address to serve /metrics on (empty: no metrics server)", checkOptionalAddr)
	cfg.Log.define(f)
	return f
}

func (c *workerCommand) parse(args []string) (workerConfig, error) {
	var cfg workerConfig
	if err := c.flags(&cfg).parse(args, c.m.getenv); err != nil {
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
	}
	return cfg, nil
}

func (c *workerCommand) Usage(w io.Writer) { c.flags(&workerConfig{}).Usage(w) }

func (c *workerCommand) Run(ctx context.Context, args []string) error {
	if _, err := c.parse(args); err != nil {
		return err
	}
	return errors.New("worker engines are not implemented yet")
}
