package auth

import (
	"context"
	"time"
)

// Limiter enforces per-minute allowances (requests, tokens) for named buckets. Both
// implementations use a token bucket that refills perMinute units a minute and holds at most
// perMinute: the Redis one (GCRA) holds across API replicas, the memory one within a process.
type Limiter interface {
	// Take takes n units from bucket when that many are left and reports the outcome. With
	// n = 0 it takes nothing and allows when at least one unit is left (a pre-check for
	// allowances charged afterwards, such as tokens).
	Take(ctx context.Context, bucket string, perMinute, n int) (Decision, error)
	// Charge takes n units, or as many as are left: for usage known only after the work.
	Charge(ctx context.Context, bucket string, perMinute, n int) error
}

// Decision is a Limiter's answer, with what the x-ratelimit-* headers report.
type Decision struct {
	Allowed   bool
	Limit     int
	Remaining int
	// RetryAfter is how long until the request would be allowed (when it is not).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}

// Slots caps concurrent work per bucket (a key's concurrent jobs). A slot is held by an id (a
// job id) until released or until its ttl passes, so a replica that dies holding slots cannot
// lock a key out for longer than the ttl.
type Slots interface {
	// Acquire takes a slot for id when fewer than limit are held and reports whether it did.
	Acquire(ctx context.Context, bucket, id string, limit int, ttl time.Duration) (bool, error)
	// Release gives id's slot back; releasing a slot not held is no error.
	Release(ctx context.Context, bucket, id string) error
	// Held lists the ids holding slots in bucket.
	Held(ctx context.Context, bucket string) ([]string, error)
}
