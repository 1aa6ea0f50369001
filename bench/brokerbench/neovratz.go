package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/job"
)

// benchModel is the one model every job asks for.
const benchModel = "bench-model"

// result of every job: what a no-op worker reports.
var noopResult = json.RawMessage(`{"ok":true}`)

func redisSubject(o options, batch int, logger *slog.Logger) subject {
	return subject{
		name:  fmt.Sprintf("neovratz redis (Reserve n=%d)", batch),
		redis: true,
		open: func(ctx context.Context, p *probe) (instance, error) {
			c, rt, err := newRedisClient(ctx, o.redisURL, -1)
			if err != nil {
				return nil, err
			}
			var b [6]byte
			_, _ = rand.Read(b[:])
			prefix := "nvbench:" + hex.EncodeToString(b[:])
			br, err := redisbroker.New(ctx, c, redisbroker.Options{Prefix: prefix, Logger: logger})
			if err != nil {
				c.Close()
				return nil, err
			}
			cleanup := func() error {
				defer c.Close()
				return deleteKeys(context.Background(), c, prefix)
			}
			return startConsumers(br, rt, cleanup, o.consumers, batch, p), nil
		},
	}
}

func sqliteSubject(o options, batch int, logger *slog.Logger) subject {
	return subject{
		name: fmt.Sprintf("neovratz sqlite (Reserve n=%d)", batch),
		open: func(ctx context.Context, p *probe) (instance, error) {
			dir, err := os.MkdirTemp("", "brokerbench-")
			if err != nil {
				return nil, err
			}
			br, err := sqlitebroker.Open(ctx, filepath.Join(dir, "broker.db"), broker.Config{}, logger)
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			cleanup := func() error { return os.RemoveAll(dir) }
			return startConsumers(br, nil, cleanup, o.consumers, batch, p), nil
		},
	}
}

// brokerInstance is a neovratz broker with its consumers, each of which does what one worker
// slot does with no-op work: Reserve, then Complete.
type brokerInstance struct {
	b       broker.Broker
	rt      *roundTripCounter
	cleanup func() error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func startConsumers(b broker.Broker, rt *roundTripCounter, cleanup func() error, consumers, batch int, p *probe) *brokerInstance {
	ctx, cancel := context.WithCancel(context.Background())
	bi := &brokerInstance{b: b, rt: rt, cleanup: cleanup, cancel: cancel}
	models := []string{benchModel}
	for i := range consumers {
		worker := fmt.Sprintf("bench-worker-%d", i)
		bi.wg.Go(func() {
			for {
				leases, err := b.Reserve(ctx, worker, models, batch)
				if err != nil {
					if ctx.Err() == nil {
						p.fail(fmt.Errorf("reserve: %w", err))
					}
					return
				}
				p.picked(time.Now())
				for _, l := range leases {
					if err := b.Complete(ctx, l, noopResult); err != nil {
						if ctx.Err() == nil {
							p.fail(fmt.Errorf("complete %s: %w", l.Job.ID, err))
						}
						return
					}
					p.done()
				}
			}
		})
	}
	return bi
}

func (bi *brokerInstance) enqueue(ctx context.Context) error {
	_, _, err := bi.b.Enqueue(ctx, job.Job{
		Kind:  job.KindChat,
		Model: benchModel,
		Owner: "bench",
		Input: payload,
	})
	return err
}

func (bi *brokerInstance) roundTrips() int64 { return bi.rt.load() }

func (bi *brokerInstance) close() error {
	bi.cancel()
	bi.wg.Wait()
	return errors.Join(bi.b.Close(), bi.cleanup())
}
