package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in Redis, shared by every process on it: a hash of payloads
// (<prefix>:{outbox}:items) and a sorted set of ids scored by due time in unix milliseconds
// (<prefix>:{outbox}:due). The hash tag keeps both in one Cluster slot, as the scripts that
// touch both need.
type Redis struct {
	rdb         redis.UniversalClient
	items, dues string
}

// NewRedis returns a store on rdb whose keys start with prefix (default "neovratz"). The caller
// owns rdb.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = "neovratz"
	}
	return &Redis{rdb: rdb, items: prefix + ":{outbox}:items", dues: prefix + ":{outbox}:due"}
}

// claimScript takes the due ids in order, leases each and returns id, payload pairs; an id
// without a payload (which no script leaves behind, but a hand-edited store might) is dropped.
// KEYS: items, dues. ARGV: now (ms), n, until (ms).
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[1], id)
  if data then
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = data
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out`)

// updateScript replaces an existing item. KEYS: items, dues. ARGV: id, data, due (ms).
var updateScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`)

// Put implements Store.
func (r *Redis) Put(ctx context.Context, item Item, due time.Time) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.items, item.ID, item.Data)
		p.ZAdd(ctx, r.dues, redis.Z{Score: float64(due.UnixMilli()), Member: item.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox put %s: %w", item.ID, err)
	}
	return nil
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]Item, error) {
	if n <= 0 {
		return nil, nil
	}
	vals, err := claimScript.Run(ctx, r.rdb, []string{r.items, r.dues}, now.UnixMilli(), n, until.UnixMilli()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	out := make([]Item, 0, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		out = append(out, Item{ID: vals[i], Data: []byte(vals[i+1])})
	}
	return out, nil
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, item Item, due time.Time) (bool, error) {
	n, err := updateScript.Run(ctx, r.rdb, []string{r.items, r.dues}, item.ID, item.Data, due.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("outbox update %s: %w", item.ID, err)
	}
	return n == 1, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, r.items, id)
		p.ZRem(ctx, r.dues, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox delete %s: %w", id, err)
	}
	return nil
}
