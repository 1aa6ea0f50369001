package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisLimiter is a Limiter shared by every API replica: GCRA in Redis through
// github.com/go-redis/redis_rate.
type RedisLimiter struct {
	lim    *redis_rate.Limiter
	prefix string
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter on rdb whose keys start with prefix (default "neovratz").
func NewRedisLimiter(rdb redis.UniversalClient, prefix string) *RedisLimiter {
	if prefix == "" {
		prefix = "neovratz"
	}
	return &RedisLimiter{lim: redis_rate.NewLimiter(rdb), prefix: prefix + ":rl:"}
}

// Take implements Limiter.
func (l *RedisLimiter) Take(ctx context.Context, bucket string, perMinute, n int) (Decision, error) {
	res, err := l.lim.AllowN(ctx, l.prefix+bucket, redis_rate.PerMinute(perMinute), n)
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit %s: %w", bucket, err)
	}
	d := Decision{Limit: perMinute, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if n == 0 {
		// GCRA with cost 0 takes nothing and reports what is left.
		d.Allowed = res.Remaining >= 1
		if !d.Allowed {
			d.RetryAfter = time.Minute / time.Duration(perMinute)
		}
		return d, nil
	}
	d.Allowed = res.Allowed > 0
	if !d.Allowed {
		d.RetryAfter = res.RetryAfter
		if d.RetryAfter < 0 || n > perMinute {
			d.RetryAfter = time.Minute
		}
	}
	return d, nil
}

// Charge implements Limiter.
func (l *RedisLimiter) Charge(ctx context.Context, bucket string, perMinute, n int) error {
	if n <= 0 {
		return nil
	}
	if _, err := l.lim.AllowAtMost(ctx, l.prefix+bucket, redis_rate.PerMinute(perMinute), n); err != nil {
		return fmt.Errorf("charge %s: %w", bucket, err)
	}
	return nil
}

// RedisSlots is Slots shared by every API replica: a sorted set per bucket of ids scored by
// their expiry, changed by one script so that check-and-take is atomic.
type RedisSlots struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Slots = (*RedisSlots)(nil)

// NewRedisSlots returns slots on rdb whose keys start with prefix (default "neovratz").
func NewRedisSlots(rdb redis.UniversalClient, prefix string) *RedisSlots {
	if prefix == "" {
		prefix = "neovratz"
	}
	return &RedisSlots{rdb: rdb, prefix: prefix + ":slots:"}
}

// acquireScript: KEYS: the set. ARGV: id, limit, now (ms), expiry (ms).
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
return 1`)

// Acquire implements Slots.
func (s *RedisSlots) Acquire(ctx context.Context, bucket, id string, limit int, ttl time.Duration) (bool, error) {
	now := time.Now()
	n, err := acquireScript.Run(ctx, s.rdb, []string{s.prefix + bucket}, id, limit, now.UnixMilli(), now.Add(ttl).UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("acquire slot %s: %w", bucket, err)
	}
	return n == 1, nil
}

// Release implements Slots.
func (s *RedisSlots) Release(ctx context.Context, bucket, id string) error {
	if err := s.rdb.ZRem(ctx, s.prefix+bucket, id).Err(); err != nil {
		return fmt.Errorf("release slot %s: %w", bucket, err)
	}
	return nil
}

// Held implements Slots.
func (s *RedisSlots) Held(ctx context.Context, bucket string) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.prefix+bucket, &redis.ZRangeBy{Min: fmt.Sprint(time.Now().UnixMilli()), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("slots %s: %w", bucket, err)
	}
	return ids, nil
}
