package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/job"
)

func TestAdmin(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)

		t.Run("keys", func(t *testing.T) {
			resp, body := e.do(t, "POST", "/v1/admin/keys", e.admin,
				`{"name":"ci","scopes":["inference"],"models":["text"],"limits":{"requests_per_minute":60},"expires_in":3600}`)
			if resp.StatusCode != 201 {
				t.Fatalf("create: %d %s", resp.StatusCode, body)
			}
			var created struct {
				ID        string `json:"id"`
				Key       string `json:"key"`
				ExpiresAt string `json:"expires_at"`
				Hash      any    `json:"hash"`
			}
			_ = json.Unmarshal([]byte(body), &created)
			if !strings.HasPrefix(created.Key, "nvk_"+created.ID+"_") || created.ExpiresAt == "" || created.Hash != nil {
				t.Fatalf("created key = %s", body)
			}
			if r, b := e.do(t, "POST", "/v1/chat/completions", created.Key, chatBody); r.StatusCode != 200 {
				t.Fatalf("the new key does not work: %d %s", r.StatusCode, b)
			}
			_, body = e.do(t, "GET", "/v1/admin/keys", e.admin, "")
			if !strings.Contains(body, `"id":"`+created.ID+`"`) || strings.Contains(body, created.Key) {
				t.Errorf("list = %s", body)
			}
			if r, b := e.do(t, "GET", "/v1/admin/keys/"+created.ID, e.admin, ""); r.StatusCode != 200 || !strings.Contains(b, `"name":"ci"`) {
				t.Errorf("show: %d %s", r.StatusCode, b)
			}
			if r, _ := e.do(t, "GET", "/v1/admin/keys/nope", e.admin, ""); r.StatusCode != 404 {
				t.Errorf("show unknown: %d", r.StatusCode)
			}
			for _, bad := range []string{`{"name":"x","scopes":["root"]}`, `{"name":"","scopes":["jobs"]}`, `{"name":"x","scopes":[]}`} {
				if r, b := e.do(t, "POST", "/v1/admin/keys", e.admin, bad); r.StatusCode != 400 {
					t.Errorf("create %s: %d %s, want 400", bad, r.StatusCode, b)
				}
			}
		})

		t.Run("workers", func(t *testing.T) {
			_, body := e.do(t, "GET", "/v1/admin/workers", e.admin, "")
			if !strings.Contains(body, e.worker.id) {
				t.Fatalf("workers = %s", body)
			}
			_, body = e.do(t, "GET", "/v1/admin/service-discovery", e.admin, "")
			if !strings.Contains(body, `"targets":["127.0.0.1:9999"]`) {
				t.Errorf("service discovery = %s", body)
			}
			if r, b := e.do(t, "POST", "/v1/admin/workers/"+e.worker.id+"/drain", e.admin, ""); r.StatusCode != 200 || !strings.Contains(b, `"draining":true`) {
				t.Fatalf("drain: %d %s", r.StatusCode, b)
			}
			if r, _ := e.do(t, "POST", "/v1/admin/workers/nope/drain", e.admin, ""); r.StatusCode != 404 {
				t.Errorf("drain unknown: %d", r.StatusCode)
			}
		})

		t.Run("queues and dead letters", func(t *testing.T) {
			if r, b := e.do(t, "POST", "/v1/jobs", e.admin, `{"kind":"chat","input":{"model":"fail","max_tokens":2,"messages":[{"role":"user","content":"x"}]}}`); r.StatusCode != 202 && r.StatusCode != 503 {
				t.Fatalf("submit: %d %s", r.StatusCode, b)
			}
			var dead []job.Job
			waitFor(t, "a dead letter", func() bool {
				dead, _ = e.b.DeadLetters(context.Background(), 10)
				return len(dead) > 0
			})
			_, body := e.do(t, "GET", "/v1/admin/dead-letters", e.admin, "")
			if !strings.Contains(body, dead[0].ID) {
				t.Fatalf("dead letters = %s", body)
			}
			_, body = e.do(t, "GET", "/v1/admin/queues", e.admin, "")
			if !strings.Contains(body, `"model":"fail"`) {
				t.Errorf("queues = %s", body)
			}
			if r, b := e.do(t, "POST", "/v1/admin/dead-letters/"+dead[0].ID+"/requeue", e.admin, ""); r.StatusCode != 200 || !strings.Contains(b, `"status":"queued"`) {
				t.Errorf("requeue: %d %s", r.StatusCode, b)
			}
			if r, _ := e.do(t, "POST", "/v1/admin/dead-letters/job_nope/requeue", e.admin, ""); r.StatusCode != 404 {
				t.Errorf("requeue unknown: %d", r.StatusCode)
			}
		})
	})
}
