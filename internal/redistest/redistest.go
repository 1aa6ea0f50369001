// Package redistest gives tests the Redis server that the test command started: its URL comes
// from NEOVRATZ_TEST_REDIS_URL. Without it a test skips, except under CI (CI=true), where a
// missing Redis is a failure, so a broken set-up can never pass as green.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL is the environment variable that holds the test Redis URL.
const EnvURL = "NEOVRATZ_TEST_REDIS_URL"

// URL returns the test Redis URL, skipping (or, under CI, failing) the test when there is none.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI: the test command must start Redis", EnvURL)
		}
		t.Skipf("%s is not set; run the tests through scripts/test.sh to get a Redis", EnvURL)
	}
	return url
}

// Client returns a client of the test Redis, closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("ping test redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix unique to this call, so tests sharing one Redis never see each
// other's keys.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "nvtest:" + hex.EncodeToString(b[:])
}
