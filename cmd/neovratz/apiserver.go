package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/brokerhttp"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/outbox"
)

// apiServerConfig is the configuration of the HTTP API that serve and api share.
type apiServerConfig struct {
	Auth           bool          // false: every request is let in (local development only)
	AdminKey       string        // bootstrap admin key for an empty key store; generated when empty
	PublicURL      string        // base of the URLs the API hands out; empty: each request's host
	RequestTimeout time.Duration // a synchronous call's limit, queue wait included
	// WebhookAllowNetworks lists, comma-separated, the non-public networks (CIDRs or single
	// addresses) webhooks may reach; validated by checkNetworks.
	WebhookAllowNetworks string
}

func (c *apiServerConfig) define(f *flagSet) {
	f.Bool(&c.Auth, "auth", true, "require API keys; --auth=false lets every request in, for local development only")
	f.String(&c.AdminKey, "admin-key", "", "admin key (nvk_<id>_<secret>) created when no key exists yet; empty: one is generated and printed once (prefer the environment variable)", nil)
	f.String(&c.PublicURL, "public-url", "", "base URL clients reach the API at, for the image URLs it hands out (empty: the request's own host)", checkHTTPURL)
	f.Duration(&c.RequestTimeout, "request-timeout", 10*time.Minute, "longest a synchronous inference call may take, queue wait included, before its job is canceled (504)")
	f.String(&c.WebhookAllowNetworks, "webhook-allow-networks", "", "comma-separated networks (CIDRs such as 10.20.0.0/16, or addresses) that webhooks may reach although they are loopback, private or link-local; empty: public addresses only", checkNetworks)
}

// parseNetworks parses a comma-separated list of CIDRs and single addresses.
func parseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func checkNetworks(s string) error {
	_, err := parseNetworks(s)
	return err
}

// keyPrefix starts the Redis keys of API keys, rate limits and slots, as the broker's start
// with its own prefix.
const keyPrefix = "nv"

// keyStore opens where API keys live: Redis when the broker is Redis, otherwise the SQLite file
// keys.db in dataDir.
func keyStore(ctx context.Context, b *openedBroker, dataDir string) (auth.Store, error) {
	if b.rdb != nil {
		return auth.NewRedisStore(b.rdb, keyPrefix), nil
	}
	s, err := auth.OpenSQLite(ctx, filepath.Join(dataDir, "keys.db"))
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	return s, nil
}

// runAPI serves the HTTP API on addr over b until ctx ends, with the metrics of reg on /metrics
// (serve registers its built-in worker's there too). dataDir holds the key store when the
// broker is the embedded one.
func (m *Main) runAPI(ctx context.Context, addr string, cfg apiServerConfig, b *openedBroker, dataDir string, reg *prometheus.Registry, logger *slog.Logger) error {
	allow, err := parseNetworks(cfg.WebhookAllowNetworks) // validated with the flags
	if err != nil {
		return err
	}
	hc := httpapi.Config{
		Broker: b.Broker, Logger: logger, Registry: reg, Version: currentBuild(),
		PublicURL: cfg.PublicURL, SyncTimeout: cfg.RequestTimeout, AuthDisabled: !cfg.Auth,
		WorkerHandler: workerHTTPHandler(b, logger),
		Webhooks:      httpapi.WebhookConfig{AllowNetworks: allow},
	}
	// The end-of-job work of async jobs (webhooks, token charges) waits in an outbox every
	// replica shares: Redis beside the broker, or a SQLite file beside the embedded one.
	if b.rdb != nil {
		hc.Outbox = outbox.NewRedis(b.rdb, keyPrefix)
	} else {
		ob, err := outbox.OpenSQLite(ctx, filepath.Join(dataDir, "outbox.db"))
		if err != nil {
			return fmt.Errorf("open webhook outbox: %w", err)
		}
		defer ob.Close() // after api.Close, deferred below
		hc.Outbox = ob
	}
	if !cfg.Auth {
		logger.Warn("authentication is OFF (--auth=false): anyone who reaches this server can use and administer it; for local development only")
	} else {
		store, err := keyStore(ctx, b, dataDir)
		if err != nil {
			return err
		}
		defer store.Close()
		keys := auth.NewKeys(store, nil)
		token, created, err := keys.Bootstrap(ctx, cfg.AdminKey)
		if err != nil {
			return err
		}
		if created {
			logger.Info("created the bootstrap admin key", "key", keyID(token))
			if cfg.AdminKey == "" {
				// Printed once, on stderr and never in the logs: the store keeps only its hash.
				fmt.Fprintf(m.Stderr, "neovratz: no API key existed, so an admin key was created; it is shown only this once:\n\n    %s\n\n", token)
			}
		}
		hc.Keys = keys
		if hc.URLKey, err = store.Secret(ctx, "image-urls"); err != nil {
			return fmt.Errorf("url signing secret: %w", err)
		}
		if b.rdb != nil {
			hc.Limiter, hc.Slots = auth.NewRedisLimiter(b.rdb, keyPrefix), auth.NewRedisSlots(b.rdb, keyPrefix)
		} else {
			hc.Limiter, hc.Slots = auth.NewMemoryLimiter(nil), auth.NewMemorySlots(nil)
		}
	}
	api, err := httpapi.New(hc)
	if err != nil {
		return err
	}
	defer api.Close()
	return serveHTTP(ctx, addr, api.Handler(), logger)
}

func keyID(token string) string {
	id, _, err := auth.ParseToken(token)
	if err != nil {
		return ""
	}
	return id
}

// workerHTTPHandler serves workers over HTTP under /v1/worker/ (the API puts it behind a key
// with the worker scope).
func workerHTTPHandler(b *openedBroker, logger *slog.Logger) http.Handler {
	return brokerhttp.NewHandler(b.Broker, logger)
}
