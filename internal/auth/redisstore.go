package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps keys in Redis, shared by every API replica. Each key is a hash
// <prefix>:{apikeys}:key:<id> with fields data (storedKey JSON) and revoked (unix nanoseconds);
// the set <prefix>:{apikeys}:ids lists the ids. The hash tag keeps them in one Cluster slot, as
// the scripts that touch both need.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb under prefix (default "neovratz"). The caller owns rdb.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = "neovratz"
	}
	return &RedisStore{rdb: rdb, prefix: prefix}
}

func (s *RedisStore) keyKey(id string) string { return s.prefix + ":{apikeys}:key:" + id }
func (s *RedisStore) setKey() string          { return s.prefix + ":{apikeys}:ids" }

// createScript adds a key unless its id exists — or, with ARGV[3] = "1", unless any key
// exists — as one atomic step. KEYS: key hash, id set. ARGV: id, data, first-only.
var createScript = redis.NewScript(`
if ARGV[3] == '1' and redis.call('SCARD', KEYS[2]) > 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'revoked', '0')
redis.call('SADD', KEYS[2], ARGV[1])
return 1`)

// revokeScript sets the revocation time of an existing key that has none. KEYS: key hash.
// ARGV: unix nanoseconds.
var revokeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'revoked') == '0' then redis.call('HSET', KEYS[1], 'revoked', ARGV[1]) end
return 1`)

func (s *RedisStore) create(ctx context.Context, k Key, firstOnly bool) (int64, error) {
	data, err := encodeKey(k)
	if err != nil {
		return 0, err
	}
	flag := "0"
	if firstOnly {
		flag = "1"
	}
	n, err := createScript.Run(ctx, s.rdb, []string{s.keyKey(k.ID), s.setKey()}, k.ID, data, flag).Int64()
	if err != nil {
		return 0, fmt.Errorf("create key: %w", err)
	}
	return n, nil
}

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, k Key) error {
	n, err := s.create(ctx, k, false)
	if err == nil && n != 1 {
		err = ErrExists
	}
	return err
}

// CreateFirst implements Store.
func (s *RedisStore) CreateFirst(ctx context.Context, k Key) (bool, error) {
	n, err := s.create(ctx, k, true)
	if err == nil && n == -1 {
		err = ErrExists
	}
	return n == 1, err
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id string) (Key, error) {
	vals, err := s.rdb.HMGet(ctx, s.keyKey(id), "data", "revoked").Result()
	if err != nil {
		return Key{}, fmt.Errorf("get key: %w", err)
	}
	return decodeRedisKey(vals)
}

func decodeRedisKey(vals []any) (Key, error) {
	data, ok := vals[0].(string)
	if !ok {
		return Key{}, ErrNotFound
	}
	rs, _ := vals[1].(string)
	revoked, _ := strconv.ParseInt(rs, 10, 64)
	return decodeKey([]byte(data), revoked)
}

// List implements Store.
func (s *RedisStore) List(ctx context.Context) ([]Key, error) {
	ids, err := s.rdb.SMembers(ctx, s.setKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.keyKey(id), "data", "revoked")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]Key, 0, len(ids))
	for _, c := range cmds {
		k, err := decodeRedisKey(c.Val())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return keys, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Revoke implements Store.
func (s *RedisStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	n, err := revokeScript.Run(ctx, s.rdb, []string{s.keyKey(id)}, at.UnixNano()).Int64()
	if err != nil {
		return Key{}, fmt.Errorf("revoke key: %w", err)
	}
	if n == 0 {
		return Key{}, ErrNotFound
	}
	return s.Get(ctx, id)
}

// Secret implements Store.
func (s *RedisStore) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	k := s.prefix + ":secret:" + name
	if err := s.rdb.SetNX(ctx, k, fresh, 0).Err(); err != nil {
		return nil, fmt.Errorf("store secret: %w", err)
	}
	v, err := s.rdb.Get(ctx, k).Bytes()
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	return v, nil
}

// Close implements Store; the client belongs to the caller.
func (s *RedisStore) Close() error { return nil }
