package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/inference"
)

const model = "bench"

// startGateway starts the API over the broker of mode with a worker serving the engine.
func startGateway(ctx context.Context, mode string, o options, e engine, logger *slog.Logger) (*server, error) {
	var b broker.Broker
	var store auth.Store
	var lim auth.Limiter
	var slots auth.Slots
	var cleanup []func()
	switch mode {
	case "embedded":
		dir, err := os.MkdirTemp("", "gatewaybench")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		sb, err := sqlitebroker.Open(ctx, filepath.Join(dir, "broker.db"), broker.Config{}, logger)
		if err != nil {
			return nil, err
		}
		b = sb
		ks, err := auth.OpenSQLite(ctx, filepath.Join(dir, "keys.db"))
		if err != nil {
			return nil, err
		}
		store, lim, slots = ks, auth.NewMemoryLimiter(nil), auth.NewMemorySlots(nil)
	case "redis":
		if o.redisURL == "" {
			return nil, fmt.Errorf("-redis-url is required")
		}
		opts, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return nil, err
		}
		opts.PoolSize = 256
		rdb := redis.NewClient(opts)
		prefix := fmt.Sprintf("gwbench%d", time.Now().UnixNano())
		cleanup = append(cleanup, func() { deletePrefix(rdb, prefix); rdb.Close() })
		rb, err := redisbroker.New(ctx, rdb, redisbroker.Options{Prefix: prefix, Logger: logger})
		if err != nil {
			return nil, err
		}
		b = rb
		store, lim, slots = auth.NewRedisStore(rdb, prefix), auth.NewRedisLimiter(rdb, prefix), auth.NewRedisSlots(rdb, prefix)
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	keys := auth.NewKeys(store, nil)
	token, _, err := keys.Bootstrap(ctx, "")
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{Broker: b, Logger: logger, Registry: prometheus.NewRegistry(), Keys: keys, Limiter: lim, Slots: slots})
	if err != nil {
		return nil, err
	}
	if err := b.RegisterWorker(ctx, broker.WorkerInfo{ID: "bench-worker", Models: []string{model}, Slots: 100000, StartedAt: time.Now(),
		ModelInfo: []broker.ModelInfo{{Name: model, Kind: "text"}}}); err != nil {
		return nil, err
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx, b, e, o.reserveBatch)
	}()
	srv, err := listen(api.Handler())
	if err != nil {
		stopWorker()
		return nil, err
	}
	srv.token = token
	inner := srv.close
	srv.close = func() {
		inner()
		api.Close()
		stopWorker()
		<-done
		b.Close()
		store.Close()
		for _, c := range cleanup {
			c()
		}
	}
	return srv, nil
}

// work is the worker loop: reserve, run the engine, write one delta, complete.
func work(ctx context.Context, b broker.Broker, e engine, batch int) {
	for ctx.Err() == nil {
		leases, err := b.Reserve(ctx, "bench-worker", []string{model}, batch)
		if err != nil {
			continue
		}
		for _, l := range leases {
			go func() {
				res, err := e.generate(ctx)
				if err != nil {
					return
				}
				d, _ := json.Marshal(inference.TextDelta{Text: res.Choices[0].Text})
				if _, err := b.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: d}); err != nil {
					return
				}
				r, _ := json.Marshal(res)
				_ = b.Complete(ctx, l, r)
			}()
		}
	}
}

func deletePrefix(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				rdb.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			rdb.Unlink(ctx, batch...)
		}
	}
}
