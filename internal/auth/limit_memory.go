package auth

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryLimiter is a Limiter for one process (the embedded server), with a
// golang.org/x/time/rate token bucket per bucket name.
type MemoryLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*memBucket
}

type memBucket struct {
	perMinute int
	lim       *rate.Limiter
}

var _ Limiter = (*MemoryLimiter)(nil)

// maxMemBuckets bounds the map: buckets are per key, and past this many the full ones (which
// hold no state worth keeping) are dropped.
const maxMemBuckets = 100_000

// NewMemoryLimiter returns an empty MemoryLimiter; now is the clock (nil: time.Now).
func NewMemoryLimiter(now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemoryLimiter{now: now, buckets: map[string]*memBucket{}}
}

func (m *MemoryLimiter) bucket(name string, perMinute int, now time.Time) *rate.Limiter {
	b := m.buckets[name]
	if b == nil || b.perMinute != perMinute {
		if len(m.buckets) >= maxMemBuckets {
			for k, v := range m.buckets {
				if v.lim.TokensAt(now) >= float64(v.perMinute) {
					delete(m.buckets, k)
				}
			}
		}
		b = &memBucket{perMinute: perMinute, lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
		m.buckets[name] = b
	}
	return b.lim
}

// Take implements Limiter.
func (m *MemoryLimiter) Take(ctx context.Context, name string, perMinute, n int) (Decision, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	lim := m.bucket(name, perMinute, now)
	perUnit := time.Minute / time.Duration(perMinute)
	d := Decision{Limit: perMinute}
	tokens := lim.TokensAt(now)
	need := max(n, 1)
	switch {
	case n == 0 || need > perMinute:
		d.Allowed = n == 0 && tokens >= 1
	default:
		d.Allowed = lim.AllowN(now, n)
		if d.Allowed {
			tokens -= float64(n)
		}
	}
	if !d.Allowed {
		d.RetryAfter = time.Duration((float64(need) - tokens) * float64(perUnit))
		if need > perMinute {
			d.RetryAfter = time.Minute
		}
	}
	d.Remaining = max(0, int(math.Floor(tokens)))
	d.ResetAfter = time.Duration((float64(perMinute) - tokens) * float64(perUnit))
	return d, nil
}

// Charge implements Limiter.
func (m *MemoryLimiter) Charge(ctx context.Context, name string, perMinute, n int) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	lim := m.bucket(name, perMinute, now)
	if take := min(n, int(lim.TokensAt(now))); take > 0 {
		lim.AllowN(now, take)
	}
	return nil
}

// MemorySlots is Slots for one process.
type MemorySlots struct {
	now func() time.Time

	mu   sync.Mutex
	held map[string]map[string]time.Time // bucket → id → expiry
}

var _ Slots = (*MemorySlots)(nil)

// NewMemorySlots returns an empty MemorySlots; now is the clock (nil: time.Now).
func NewMemorySlots(now func() time.Time) *MemorySlots {
	if now == nil {
		now = time.Now
	}
	return &MemorySlots{now: now, held: map[string]map[string]time.Time{}}
}

// Acquire implements Slots.
func (s *MemorySlots) Acquire(ctx context.Context, bucket, id string, limit int, ttl time.Duration) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.held[bucket]
	if ids == nil {
		ids = map[string]time.Time{}
		s.held[bucket] = ids
	}
	for k, exp := range ids {
		if !now.Before(exp) {
			delete(ids, k)
		}
	}
	if _, ok := ids[id]; !ok && len(ids) >= limit {
		return false, nil
	}
	ids[id] = now.Add(ttl)
	return true, nil
}

// Release implements Slots.
func (s *MemorySlots) Release(ctx context.Context, bucket, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids := s.held[bucket]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(s.held, bucket)
		}
	}
	return nil
}

// Held implements Slots.
func (s *MemorySlots) Held(ctx context.Context, bucket string) ([]string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, exp := range s.held[bucket] {
		if now.Before(exp) {
			out = append(out, id)
		}
	}
	return out, nil
}
