package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/redistest"
)

func TestKeysCommand(t *testing.T) {
	for _, store := range []string{"sqlite", "redis"} {
		t.Run(store, func(t *testing.T) {
			args := []string{"--data-dir", t.TempDir()}
			if store == "redis" {
				args = []string{"--redis-url", redistest.URL(t)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			run := func(a ...string) (int, string, string) { return runCtx(ctx, env{}, append(a, args...)...) }

			code, out, errOut := run("keys", "create", "--name", "ci", "--scopes", "inference,jobs", "--models", "m1,m2",
				"--requests-per-minute", "60", "--expires-in", "24h")
			if code != 0 {
				t.Fatalf("create: %d %s %s", code, out, errOut)
			}
			var token string
			for _, f := range strings.Fields(out) {
				if strings.HasPrefix(f, "nvk_") {
					token = f
				}
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(token, "nvk_"), "_")
			if id == "" {
				t.Fatalf("no token in %q", out)
			}
			code, out, _ = run("keys", "list")
			if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "inference,jobs") || !strings.Contains(out, "m1,m2") || strings.Contains(out, token) {
				t.Fatalf("list: %d\n%s", code, out)
			}
			if code, out, _ = run("keys", "revoke", id); code != 0 || !strings.Contains(out, "revoked key "+id) {
				t.Fatalf("revoke: %d %s", code, out)
			}
			_, out, _ = run("keys", "list")
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, id) {
					line = l
				}
			}
			if strings.HasSuffix(strings.TrimSpace(line), "-") {
				t.Errorf("revoked key listed without a revocation time: %q", line)
			}
			if code, _, errOut := run("keys", "revoke", "nosuchkey"); code != exitError {
				t.Errorf("revoke unknown: %d %s", code, errOut)
			}
			for _, bad := range [][]string{{"keys", "create", "--name", "x", "--scopes", "root"}, {"keys", "create"}, {"keys", "frobnicate"}, {"keys", "revoke"}} {
				if code, _, _ := run(bad...); code != exitUsage {
					t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
				}
			}
		})
	}
}
