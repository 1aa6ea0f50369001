package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// serverVersion is a Redis version, major and minor.
type serverVersion struct{ major, minor int }

func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

// parseVersion reads redis_version from the text of INFO server.
func parseVersion(info string) (serverVersion, error) {
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		if len(parts) < 2 {
			break
		}
		ma, err1 := strconv.Atoi(parts[0])
		mi, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil {
			break
		}
		return serverVersion{ma, mi}, nil
	}
	return serverVersion{}, errors.New("no redis_version in INFO server")
}

// durability is what the server's configuration says about losing acknowledged writes.
type durability struct {
	version     serverVersion
	configKnown bool // CONFIG GET answered (managed services often disable it)
	appendonly  string
	appendfsync string
	policy      string // maxmemory-policy
}

// checkServer reads the server's version and configuration, warns about settings that can lose
// jobs, and for durable mode decides how to confirm writes: it returns waitAOF = true when each
// enqueue must be followed by WAITAOF, and an error when the server cannot give durability.
func checkServer(ctx context.Context, rdb redis.UniversalClient, durable bool, log *slog.Logger) (waitAOF bool, err error) {
	d, err := readDurability(ctx, rdb)
	if err != nil {
		return false, err
	}
	if d.configKnown && d.policy != "noeviction" {
		log.Warn("redis maxmemory-policy is not noeviction: Redis may evict queued jobs under memory pressure",
			"maxmemory-policy", d.policy)
	}
	if !d.configKnown {
		log.Warn("cannot read the redis configuration (CONFIG GET); not checking appendonly and maxmemory-policy")
	}
	if !durable {
		if d.configKnown && d.appendonly != "yes" {
			log.Warn("redis appendonly is off: queued jobs are lost if Redis restarts")
		}
		return false, nil
	}
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return false, errors.New("durable mode needs a single-primary client, not a cluster client")
	}
	return durableMode(d)
}

// durableMode decides how durable mode confirms writes on a server described by d.
func durableMode(d durability) (waitAOF bool, err error) {
	hasWaitAOF := d.version.atLeast(7, 2)
	switch {
	case d.configKnown && d.appendonly != "yes":
		return false, fmt.Errorf("durable mode needs appendonly yes (redis has appendonly %s)", d.appendonly)
	case hasWaitAOF:
		// WAITAOF confirms each enqueue; it fails on its own if the AOF is off.
		return true, nil
	case !d.configKnown:
		return false, fmt.Errorf("durable mode on redis %d.%d (no WAITAOF) needs CONFIG GET to verify appendfsync always",
			d.version.major, d.version.minor)
	case d.appendfsync != "always":
		return false, fmt.Errorf("durable mode on redis %d.%d (no WAITAOF, added in 7.2) needs appendfsync always (redis has %s)",
			d.version.major, d.version.minor, d.appendfsync)
	}
	// appendfsync always: Redis fsyncs the append-only file before it replies.
	return false, nil
}

func readDurability(ctx context.Context, rdb redis.UniversalClient) (durability, error) {
	var d durability
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return d, fmt.Errorf("info server: %w", err)
	}
	if d.version, err = parseVersion(info); err != nil {
		return d, err
	}
	d.configKnown = true
	for _, name := range []string{"appendonly", "appendfsync", "maxmemory-policy"} {
		v, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil || v[name] == "" {
			d.configKnown = false
			break
		}
		switch name {
		case "appendonly":
			d.appendonly = v[name]
		case "appendfsync":
			d.appendfsync = v[name]
		default:
			d.policy = v[name]
		}
	}
	return d, nil
}

// waitAOFTimeout bounds how long an enqueue waits for WAITAOF.
const waitAOFTimeout = 5 * time.Second

// checkWaitAOF reads WAITAOF's reply: the number of local fsyncs confirmed must be 1.
func checkWaitAOF(cmd *redis.Cmd) error {
	v, err := cmd.Result()
	if err != nil {
		return fmt.Errorf("waitaof: %w", err)
	}
	list, ok := v.([]any)
	if !ok || len(list) < 1 {
		return fmt.Errorf("waitaof: unexpected reply %v", v)
	}
	if n, _ := list[0].(int64); n < 1 {
		return errors.New("waitaof: the write was not confirmed on disk in time")
	}
	return nil
}
