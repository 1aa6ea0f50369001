package main

import (
	"context"
	"log/slog"
)

// startLocalWorker starts the worker that `neovratz serve` runs in-process next to the API, and
// returns what stops it (draining its jobs).
//
// SEAM: internal/worker is being built in parallel (issue 4). Once it has a constructor and a
// configuration for serve, start it here on b.Broker; until then serve runs no worker and
// models are served by `neovratz worker` processes.
func startLocalWorker(ctx context.Context, cfg serveConfig, b *openedBroker, logger *slog.Logger) (stop func(), err error) {
	logger.Info("no built-in worker yet: start 'neovratz worker' processes to serve models")
	return func() {}, nil
}
