package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqSubject measures hibiken/asynq on the same Redis server, in database -asynq-db, with its
// defaults except Concurrency (= -consumers) and TaskCheckInterval (how long its one dequeuing
// loop sleeps, ×0.5–1.5 with jitter, when every queue is empty; asynq's default is 1s).
func asynqSubject(o options, check time.Duration, isDefault bool) subject {
	name := fmt.Sprintf("asynq (TaskCheckInterval %s)", check)
	if isDefault {
		name = "asynq (defaults, TaskCheckInterval 1s)"
	}
	return subject{
		name:  name,
		asynq: true,
		label: "asynq " + check.String(),
		redis: true,
		open: func(ctx context.Context, p *probe) (instance, error) {
			c, rt, err := newRedisClient(ctx, o.redisURL, o.asynqDB)
			if err != nil {
				return nil, err
			}
			if err := flushAsynqDB(ctx, c); err != nil {
				c.Close()
				return nil, err
			}
			srv := asynq.NewServerFromRedisClient(c, asynq.Config{
				Concurrency:       o.consumers,
				TaskCheckInterval: check,
				LogLevel:          asynq.WarnLevel,
			})
			// The handler does nothing: its start is the pickup, its return the completion
			// (asynq then removes the task from Redis before that slot takes another).
			handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
				p.picked(time.Now())
				p.done()
				return nil
			})
			if err := srv.Start(handler); err != nil {
				c.Close()
				return nil, fmt.Errorf("start asynq server: %w", err)
			}
			return &asynqInstance{c: c, rt: rt, srv: srv, client: asynq.NewClientFromRedisClient(c)}, nil
		},
	}
}

type asynqInstance struct {
	c      *redis.Client
	rt     *roundTripCounter
	srv    *asynq.Server
	client *asynq.Client
}

func (a *asynqInstance) enqueue(ctx context.Context) error {
	// asynq's defaults: queue "default", 25 retries, 30 min timeout, no retention.
	_, err := a.client.EnqueueContext(ctx, asynq.NewTask("noop", payload))
	return err
}

func (a *asynqInstance) roundTrips() int64 { return a.rt.load() }

func (a *asynqInstance) close() error {
	a.srv.Shutdown()
	// The client shares c, so closing c is what closes it.
	return errors.Join(flushAsynqDB(context.Background(), a.c), a.c.Close())
}
