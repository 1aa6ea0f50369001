package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// lapsedError is the error a job fails with when its last attempt's lease lapses.
var lapsedError = mustJSON(job.Error{Code: "lease_expired", Message: "the worker holding the job stopped renewing its lease", Retryable: true})

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// leaseScript runs a fenced script for lease l and returns its reply past the code.
func (b *Broker) leaseScript(ctx context.Context, op string, l *broker.Lease, calls func(nowMS int64, nowNS string) scriptCall) (string, []any, error) {
	if err := b.open(); err != nil {
		return "", nil, err
	}
	if err := checkLease(l); err != nil {
		return "", nil, fmt.Errorf("%s: %w", op, err)
	}
	_, nowMS, nowNS := b.now()
	c := calls(nowMS, nowNS)
	v, err := c.s.Run(ctx, b.rdb, c.keys, c.args...).Result()
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", op, l.Job.ID, err)
	}
	code, rest, err := reply(v)
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", op, l.Job.ID, err)
	}
	if code == "lost" || code == "canceled" {
		return code, nil, fmt.Errorf("%s %s: %w", op, l.Job.ID, leaseErr(code))
	}
	return code, rest, nil
}

// ExtendLease renews l for another Config.Lease.
func (b *Broker) ExtendLease(ctx context.Context, l *broker.Lease) error {
	_, rest, err := b.leaseScript(ctx, "extend lease", l, func(nowMS int64, _ string) scriptCall {
		return scriptCall{scriptExtend, b.k.model(l.Job.Model).jobKeys(l.Job.ID),
			append(leaseArgs(l, nowMS), ms(b.cfg.Lease))}
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		if s, ok := rest[0].(string); ok {
			if until, err := strconv.ParseInt(s, 10, 64); err == nil {
				l.Until = time.UnixMilli(until).UTC()
			}
		}
	}
	return nil
}

// Release hands the job back to the front of its priority without counting the attempt.
func (b *Broker) Release(ctx context.Context, l *broker.Lease) error {
	_, _, err := b.leaseScript(ctx, "release", l, func(nowMS int64, nowNS string) scriptCall {
		return scriptCall{scriptRelease, b.k.model(l.Job.Model).jobKeys(l.Job.ID),
			append(leaseArgs(l, nowMS), nowNS)}
	})
	return err
}

// Complete finishes the job with its result, in one round trip: the bookkeeping outside the
// model's slot (see finished) goes in the script's pipeline. When the script refuses, that
// bookkeeping was not the job's due, and unfinishedIfLive puts it right.
func (b *Broker) Complete(ctx context.Context, l *broker.Lease, result json.RawMessage) error {
	if err := b.open(); err != nil {
		return err
	}
	if err := checkLease(l); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	now, nowMS, nowNS := b.now()
	j := l.Job
	j.Attempts = l.Attempt // as the script's fence checks it
	data := broker.FinalStatus(j, result, now)
	call := scriptCall{scriptComplete, b.k.model(l.Job.Model).jobKeys(l.Job.ID),
		append(leaseArgs(l, nowMS), nowNS, b.ttl(), string(result), string(data))}
	var script *redis.Cmd
	run := func() error {
		pipe := b.rdb.Pipeline()
		script = call.s.EvalSha(ctx, pipe, call.keys, call.args...)
		b.finishedCmds(ctx, pipe, l.Job.ID, l.Job.Owner, b.ttl(), nowMS)
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if isNoScript(script.Err()) {
		if err = call.s.Load(ctx, b.rdb).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		if script.Err() != nil {
			err = script.Err()
		}
		return fmt.Errorf("complete %s: %w", l.Job.ID, err)
	}
	code, _, err := reply(script.Val())
	if err != nil {
		return fmt.Errorf("complete %s: %w", l.Job.ID, err)
	}
	switch code {
	case "ok":
		return nil
	case "lost":
		b.unfinishedIfLive(ctx, l.Job.Model, l.Job.ID, l.Job.Owner)
	}
	// canceled: Cancel finished the job and did the same bookkeeping.
	return fmt.Errorf("complete %s: %w", l.Job.ID, leaseErr(code))
}

// Fail ends the attempt: a retry after Config.Backoff, or the dead-letter list.
func (b *Broker) Fail(ctx context.Context, l *broker.Lease, failure job.Error) error {
	retryable := 0
	if failure.Retryable {
		retryable = 1
	}
	var backoff time.Duration
	if l != nil {
		backoff = b.cfg.Backoff(l.Attempt)
	}
	code, _, err := b.leaseScript(ctx, "fail", l, func(nowMS int64, nowNS string) scriptCall {
		return scriptCall{scriptFail, b.k.model(l.Job.Model).jobKeys(l.Job.ID),
			append(leaseArgs(l, nowMS), nowNS, b.deadTTL(), mustJSON(failure), retryable, ms(backoff))}
	})
	if err == nil && code == "dead" {
		b.finished(ctx, l.Job.ID, l.Job.Owner, b.deadTTL())
	}
	return err
}

// AppendEvent adds a worker's event to the job's log and returns its id (a stream id).
func (b *Broker) AppendEvent(ctx context.Context, l *broker.Lease, ev broker.Event) (string, error) {
	if ev.Type == "" {
		return "", fmt.Errorf("append event: the event has no type")
	}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return "", fmt.Errorf("append event: the event's data is not valid JSON")
	}
	t := ev.Time
	if t.IsZero() {
		t = b.cfg.Now()
	}
	_, rest, err := b.leaseScript(ctx, "append event", l, func(nowMS int64, _ string) scriptCall {
		return scriptCall{scriptAppendEvent, b.k.model(l.Job.Model).jobKeys(l.Job.ID),
			append(leaseArgs(l, nowMS), ev.Type, string(ev.Data), nanos(t))}
	})
	if err != nil {
		return "", err
	}
	id, _ := rest[0].(string)
	return id, nil
}
