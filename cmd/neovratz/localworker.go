package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/worker"
)

// startLocalWorker starts the worker that `neovratz serve` runs in-process next to the API, and
// returns what stops it (draining its jobs). It serves the models of the config file's models
// section or, without one, every model of the models directory the native engine can load.
func startLocalWorker(ctx context.Context, cfg serveConfig, b *openedBroker, reg prometheus.Registerer, home func() (string, error), logger *slog.Logger) (stop func(), err error) {
	env := engineEnv{modelsDir: cfg.ModelsDir, home: home, logger: logger, reg: reg}
	models := cfg.Models
	if models == nil {
		if models, err = modelsDirModels(cfg.ModelsDir, logger); err != nil {
			return nil, err
		}
		env.skipUnloadable = true
	}
	if len(models) == 0 {
		logger.Info("no models to serve: this process runs no worker; start 'neovratz worker' processes to serve models")
		return func() {}, nil
	}
	engines, err := buildEngines(models, env)
	if err != nil {
		return nil, err
	}
	if len(engines.models) == 0 {
		engines.Close()
		logger.Info("no model of the models directory could be loaded: this process runs no worker", "models_dir", cfg.ModelsDir)
		return func() {}, nil
	}
	if err := engines.waitReady(ctx, logger); err != nil {
		engines.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	w, err := worker.New(worker.Config{ID: "local-" + newWorkerID(), Hostname: host, Version: version, Models: engines.models},
		b.Broker, engines.engines, logger, reg, nil)
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
