package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/neovratz/neovratz/internal/worker"
)

// startLocalWorker starts the worker that `neovratz serve` runs in-process next to the API when
// its config file lists models, and returns what stops it (draining its jobs).
func startLocalWorker(ctx context.Context, cfg serveConfig, b *openedBroker, logger *slog.Logger) (stop func(), err error) {
	if len(cfg.Models) == 0 {
		logger.Info("no models in the config file: this process runs no worker; start 'neovratz worker' processes to serve models")
		return func() {}, nil
	}
	engines, err := buildEngines(cfg.Models, logger, nil)
	if err != nil {
		return nil, err
	}
	if err := engines.waitReady(ctx, logger); err != nil {
		engines.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	// The local worker's metrics are not registered: serve's /metrics is the API's registry.
	w, err := worker.New(worker.Config{ID: "local-" + newWorkerID(), Hostname: host, Version: version, Models: engines.models},
		b.Broker, engines.engines, logger, nil, nil)
	if err != nil {
		engines.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			logger.Error("local worker", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		if err := engines.Close(); err != nil {
			logger.Error("stop engines", "err", err)
		}
	}, nil
}
