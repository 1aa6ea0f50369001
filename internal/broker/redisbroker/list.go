package redisbroker

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// List limits.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// listCursor is where a page ended: the creation time (µs, the listing's score) and id of its
// last job. The next page starts right after it in the listing's order (score, then id, both
// descending).
type listCursor struct {
	score float64
	id    string
}

func (c listCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatFloat(c.score, 'f', -1, 64) + " " + c.id))
}

func decodeCursor(s string) (listCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return listCursor{}, fmt.Errorf("bad cursor")
	}
	a, id, ok := strings.Cut(string(raw), " ")
	score, err := strconv.ParseFloat(a, 64)
	if !ok || err != nil || id == "" {
		return listCursor{}, fmt.Errorf("bad cursor")
	}
	return listCursor{score, id}, nil
}

// List pages through an owner's jobs (or everyone's), newest first. The listings are ZSETs of
// job ids by creation time; ids whose job has expired are dropped from them as List meets them.
func (b *Broker) List(ctx context.Context, f broker.ListFilter) ([]job.Job, string, error) {
	if err := b.open(); err != nil {
		return nil, "", err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", fmt.Errorf("list: unknown status %q", f.Status)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	key := b.k.all()
	if f.Owner != "" {
		key = b.k.owner(f.Owner)
	}
	var cur *listCursor
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		cur = &c
	}

	top := "+inf"
	if cur != nil {
		top = strconv.FormatFloat(cur.score, 'f', -1, 64)
	}
	var (
		out    []job.Job
		scores []float64
		more   bool
		gone   []any
	)
	batch := int64(limit + 1)
	for offset := int64(0); ; offset += batch {
		zs, err := b.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: key, Start: top, Stop: "-inf", ByScore: true, Rev: true, Offset: offset, Count: batch,
		}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		var ids []string
		idScore := map[string]float64{}
		for _, z := range zs {
			id, _ := z.Member.(string)
			if cur != nil && z.Score == cur.score && id >= cur.id {
				continue // at or before the cursor
			}
			ids = append(ids, id)
			idScore[id] = z.Score
		}
		jobs, missing, err := b.getMany(ctx, ids)
		if err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		for _, id := range missing {
			gone = append(gone, id)
		}
		for _, j := range jobs {
			if f.Status != "" && j.Status != f.Status || f.Owner != "" && j.Owner != f.Owner {
				continue
			}
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, j)
			scores = append(scores, idScore[j.ID])
		}
		if more || int64(len(zs)) < batch {
			break
		}
	}
	if len(gone) > 0 {
		// Forgotten jobs: drop them from this listing (the other listing drops them on its own).
		if err := b.rdb.ZRem(ctx, key, gone...).Err(); err != nil {
			b.log.Warn("redis broker: prune listing", "err", err)
		}
	}
	next := ""
	if more {
		next = listCursor{scores[len(scores)-1], out[len(out)-1].ID}.encode()
	}
	return out, next, nil
}

// QueueStats reports every model that has had a job, sorted by model.
func (b *Broker) QueueStats(ctx context.Context) ([]broker.QueueStats, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	models, err := b.allModels(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	type cmds struct {
		depth, running *redis.IntCmd
		oldest         *redis.ZSliceCmd
	}
	pipe := b.rdb.Pipeline()
	cs := make([]cmds, len(models))
	for i, m := range models {
		mk := b.k.model(m)
		cs[i] = cmds{pipe.ZCard(ctx, mk.queued()), pipe.ZCard(ctx, mk.running()), pipe.ZRangeWithScores(ctx, mk.queued(), 0, 0)}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	_, nowMS, _ := b.now()
	out := make([]broker.QueueStats, len(models))
	for i, m := range models {
		q := broker.QueueStats{Model: m, Depth: int(cs[i].depth.Val()), Running: int(cs[i].running.Val())}
		if z := cs[i].oldest.Val(); len(z) > 0 {
			q.OldestQueuedAge = max(0, time.Duration(nowMS-int64(z[0].Score))*time.Millisecond)
		}
		out[i] = q
	}
	return out, nil
}

// allModels lists the models that have had a job, sorted.
func (b *Broker) allModels(ctx context.Context) ([]string, error) {
	models, err := b.rdb.SMembers(ctx, b.k.models()).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(models)
	return models, nil
}
