package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/redis/go-redis/v9"
)

// openedBroker is the broker a process runs on, with what closing it takes.
type openedBroker struct {
	broker.Broker
	kind  string        // "redis" or "sqlite", for the logs
	close func() error  // closes the broker and what it owns
	rdb   *redis.Client // the Redis client when the broker is Redis, shared with the API's key store
}

// openBroker opens the broker cfg selects: Redis when cfg.RedisURL is set, otherwise the
// embedded SQLite broker at cfg.SQLitePath.
func openBroker(ctx context.Context, cfg brokerConfig, logger *slog.Logger) (*openedBroker, error) {
	if cfg.RedisURL == "" {
		b, err := sqlitebroker.Open(ctx, cfg.SQLitePath, cfg.Config, logger)
		if err != nil {
			return nil, fmt.Errorf("open embedded broker %s: %w", cfg.SQLitePath, err)
		}
		return &openedBroker{Broker: b, kind: "sqlite", close: b.Close}, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL) // validated when parsing flags
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	client := redis.NewClient(opts)
	b, err := redisbroker.New(ctx, client, redisbroker.Options{Config: cfg.Config, Durable: cfg.RedisDurable, Logger: logger})
	if err != nil {
		client.Close()
		// The URL may hold a password: name only the address.
		return nil, fmt.Errorf("open redis broker at %s: %w", opts.Addr, err)
	}
	return &openedBroker{Broker: b, kind: "redis", rdb: client, close: func() error {
		berr := b.Close()
		cerr := client.Close()
		if berr != nil {
			return berr
		}
		return cerr
	}}, nil
}

// closeBroker closes b, logging a failure: at shutdown there is nobody else to tell.
func closeBroker(b *openedBroker, logger *slog.Logger) {
	if err := b.close(); err != nil {
		logger.Error("close broker", "err", err)
	}
}
