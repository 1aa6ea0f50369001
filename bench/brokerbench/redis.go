package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// newRedisClient returns a client of the Redis at url, using database db when db >= 0, that
// counts its round trips (one per command, one per pipeline).
func newRedisClient(ctx context.Context, url string, db int) (*redis.Client, *roundTripCounter, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("parse redis url: %w", err)
	}
	if db >= 0 {
		opts.DB = db
	}
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("ping redis: %w", err)
	}
	n := &roundTripCounter{}
	c.AddHook(n)
	return c, n, nil
}

// roundTripCounter is a go-redis hook that counts round trips to the server.
type roundTripCounter struct{ n atomic.Int64 }

func (c *roundTripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *roundTripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *roundTripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

func (c *roundTripCounter) load() int64 {
	if c == nil {
		return -1
	}
	return c.n.Load()
}

// redisSnapshot is the server's CPU time and command counts at one moment.
type redisSnapshot struct {
	cpu  float64 // seconds, user + system, all threads
	cmds map[string]cmdCount
}

type cmdCount struct {
	calls int64
	usec  int64
}

// cmdStat is one command's share of a measurement, per job.
type cmdStat struct {
	name        string
	callsPerJob float64
	usecPerJob  float64
}

// snapshotRedis reads INFO cpu and INFO commandstats through a connection of its own, so that
// it never counts as a round trip of a broker.
func snapshotRedis(ctx context.Context, url string) redisSnapshot {
	s := redisSnapshot{cmds: map[string]cmdCount{}}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return s
	}
	c := redis.NewClient(opts)
	defer c.Close()
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return s
	}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			s.cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			var cc cmdCount
			for field := range strings.SplitSeq(v, ",") {
				fk, fv, _ := strings.Cut(field, "=")
				switch fk {
				case "calls":
					cc.calls, _ = strconv.ParseInt(fv, 10, 64)
				case "usec":
					cc.usec, _ = strconv.ParseInt(fv, 10, 64)
				}
			}
			s.cmds[strings.TrimPrefix(k, "cmdstat_")] = cc
		}
	}
	return s
}

// diffCmdStats returns the commands run between two snapshots, per job, most calls first.
// INFO commands themselves are left out.
func diffCmdStats(before, after map[string]cmdCount, jobs int) []cmdStat {
	var out []cmdStat
	for name, a := range after {
		b := before[name]
		if a.calls == b.calls || name == "info" {
			continue
		}
		out = append(out, cmdStat{
			name:        name,
			callsPerJob: float64(a.calls-b.calls) / float64(jobs),
			usecPerJob:  float64(a.usec-b.usec) / float64(jobs),
		})
	}
	slices.SortFunc(out, func(x, y cmdStat) int {
		if x.callsPerJob != y.callsPerJob {
			if x.callsPerJob > y.callsPerJob {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	return out
}

// redisVersion asks the server at url for its version.
func redisVersion(ctx context.Context, url string) string {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return "unknown"
	}
	c := redis.NewClient(opts)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "unreachable (" + err.Error() + ")"
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "unknown"
}

// deleteKeys removes every key whose name contains sub.
func deleteKeys(ctx context.Context, c *redis.Client, sub string) error {
	iter := c.Scan(ctx, 0, "*"+sub+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

// flushAsynqDB empties the database of c, after checking that every key in it is asynq's.
func flushAsynqDB(ctx context.Context, c *redis.Client) error {
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); !strings.HasPrefix(k, "asynq:") {
			return fmt.Errorf("database %d holds key %q, which is not asynq's: refusing to flush it (pick another -asynq-db)", c.Options().DB, k)
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return c.FlushDB(ctx).Err()
}

// hostPort is the address the URL points at, for the report.
func hostPort(url string) string {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return url
	}
	host, port, _ := net.SplitHostPort(opts.Addr)
	return fmt.Sprintf("%s:%s/%d", host, port, opts.DB)
}
