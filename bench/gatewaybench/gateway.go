package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker"
)

const model = "bench"

// startGateway starts the API over the broker of mode with a worker serving the engine.
func startGateway(ctx context.Context, mode string, o options, e *sim.Engine, logger *slog.Logger) (*server, error) {
	var b broker.Broker
	var store auth.Store
	var lim auth.Limiter
	var slots auth.Slots
	var cleanup []func()
	var commands func() int64
	var serverCPU func() time.Duration
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
		commands = func() int64 { return totalCommands(rdb) }
		serverCPU = func() time.Duration { return redisCPU(rdb) }
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
	w, err := worker.New(worker.Config{ID: "bench-worker", Models: []worker.Model{{Name: model, Kind: worker.KindText, Engine: "sim", Slots: o.slots}}},
		b, map[string]worker.Engine{model: e}, logger, nil, nil)
	if err != nil {
		return nil, err
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(wctx)
	}()
	for ws, _ := b.Workers(ctx); len(ws) == 0; ws, _ = b.Workers(ctx) {
		time.Sleep(10 * time.Millisecond)
	}
	srv, err := listen(api.Handler())
	if err != nil {
		stopWorker()
		return nil, err
	}
	srv.token = token
	srv.commands = commands
	srv.redisCPU = serverCPU
	srv.jobs = func() []job.Job { return listJobs(b) }
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

// totalCommands reads total_commands_processed from INFO stats.
func totalCommands(rdb *redis.Client) int64 {
	return int64(infoField(rdb, "stats", "total_commands_processed"))
}

// redisCPU reads the CPU time the Redis server has used, from INFO cpu.
func redisCPU(rdb *redis.Client) time.Duration {
	s := infoField(rdb, "cpu", "used_cpu_sys") + infoField(rdb, "cpu", "used_cpu_user")
	return time.Duration(s * float64(time.Second))
}

func infoField(rdb *redis.Client, section, field string) float64 {
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}

// listJobs returns every job of the run (newest first).
func listJobs(b broker.Broker) []job.Job {
	var all []job.Job
	cursor := ""
	for {
		jobs, next, err := b.List(context.Background(), broker.ListFilter{Limit: 1000, Cursor: cursor})
		if err != nil {
			return all
		}
		all = append(all, jobs...)
		if next == "" {
			return all
		}
		cursor = next
	}
}
