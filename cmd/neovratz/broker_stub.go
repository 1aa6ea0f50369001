//go:build !neovratz_brokers

package main

// TEMPORARY: until internal/broker/sqlitebroker and redisbroker exist, the default build opens
// no broker. Delete this file and the build tag of broker.go once they are in.

import (
	"context"
	"errors"
	"log/slog"

	"github.com/neovratz/neovratz/internal/broker"
)

type openedBroker struct {
	broker.Broker
	kind  string
	close func() error
}

func openBroker(ctx context.Context, cfg brokerConfig, logger *slog.Logger) (*openedBroker, error) {
	return nil, errors.New("brokers are not built yet")
}

func closeBroker(b *openedBroker, logger *slog.Logger) {}
