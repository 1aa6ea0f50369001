package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/job"
)

const chatBody = `{"model":"text","messages":[{"role":"user","content":"hi"}]}`

// errCode returns the error code of an OpenAI error body.
func errCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    *string `json:"code"`
			Type    string  `json:"type"`
			Message string  `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type == "" || e.Error.Message == "" {
		t.Fatalf("not an OpenAI error body: %s", body)
	}
	if e.Error.Code == nil {
		return ""
	}
	return *e.Error.Code
}

func TestAuth(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, inferOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}})
		wrong := inferOnly[:len(inferOnly)-4] + "AAAA"

		past := auth.NewKeys(e.keys.Store(), func() time.Time { return time.Now().Add(-time.Hour) })
		_, expired, err := past.Create(context.Background(), auth.Spec{Name: "expired", Scopes: []auth.Scope{auth.ScopeInference},
			ExpiresAt: time.Now().Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		_, jobsOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}})
		_, embedOnly := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}, Models: []string{"embed"}})

		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			code                            string
		}{
			{"missing", "POST", "/v1/chat/completions", "", chatBody, 401, "missing_api_key"},
			{"malformed", "POST", "/v1/chat/completions", "sk-not-ours", chatBody, 401, "invalid_api_key"},
			{"wrong secret", "POST", "/v1/chat/completions", wrong, chatBody, 401, "invalid_api_key"},
			{"unknown id", "POST", "/v1/chat/completions", "nvk_zzzz_0123456789abcdefghijk", chatBody, 401, "invalid_api_key"},
			{"expired", "POST", "/v1/chat/completions", expired, chatBody, 401, "api_key_expired"},
			{"scope", "POST", "/v1/chat/completions", jobsOnly, chatBody, 403, "insufficient_scope"},
			{"admin scope", "GET", "/v1/admin/keys", inferOnly, "", 403, "insufficient_scope"},
			{"jobs scope", "GET", "/v1/jobs", inferOnly, "", 403, "insufficient_scope"},
			{"model denied", "POST", "/v1/chat/completions", embedOnly, chatBody, 403, "model_not_allowed"},
			{"allowed", "POST", "/v1/chat/completions", inferOnly, chatBody, 200, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.do(t, tc.method, tc.path, tc.token, tc.body)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
				}
				if tc.code != "" {
					if got := errCode(t, body); got != tc.code {
						t.Errorf("code %q, want %q", got, tc.code)
					}
				}
				if resp.Header.Get("X-Request-Id") == "" {
					t.Error("no X-Request-Id")
				}
			})
		}

		t.Run("models filtered by key", func(t *testing.T) {
			_, body := e.do(t, "GET", "/v1/models", embedOnly, "")
			if !strings.Contains(body, `"id":"embed"`) || strings.Contains(body, `"id":"text"`) {
				t.Errorf("models for an embed-only key: %s", body)
			}
		})

		t.Run("revocation is immediate", func(t *testing.T) {
			k, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}})
			if resp, body := e.do(t, "GET", "/v1/models", token, ""); resp.StatusCode != 200 {
				t.Fatalf("before revoking: %d %s", resp.StatusCode, body)
			}
			if resp, body := e.do(t, "DELETE", "/v1/admin/keys/"+k.ID, e.admin, ""); resp.StatusCode != 200 || !strings.Contains(body, `"revoked_at"`) {
				t.Fatalf("revoke: %d %s", resp.StatusCode, body)
			}
			resp, body := e.do(t, "GET", "/v1/models", token, "")
			if resp.StatusCode != 401 || errCode(t, body) != "api_key_revoked" {
				t.Fatalf("after revoking: %d %s", resp.StatusCode, body)
			}
		})

		t.Run("requests per minute", func(t *testing.T) {
			_, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}, Limits: auth.Limits{RequestsPerMinute: 2}})
			for i := range 2 {
				resp, body := e.do(t, "GET", "/v1/models", token, "")
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
				if got := resp.Header.Get("X-Ratelimit-Limit-Requests"); got != "2" {
					t.Errorf("x-ratelimit-limit-requests = %q, want 2", got)
				}
			}
			resp, body := e.do(t, "GET", "/v1/models", token, "")
			if resp.StatusCode != 429 || errCode(t, body) != "rate_limit_exceeded" {
				t.Fatalf("third request: %d %s, want 429", resp.StatusCode, body)
			}
			ra := resp.Header.Get("Retry-After")
			if ra == "" || ra == "0" {
				t.Errorf("Retry-After = %q", ra)
			}
			if resp.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || resp.Header.Get("X-Ratelimit-Reset-Requests") == "" {
				t.Errorf("rate limit headers: %v", resp.Header)
			}
		})

		t.Run("tokens per minute", func(t *testing.T) {
			_, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}, Limits: auth.Limits{TokensPerMinute: 5}})
			if resp, body := e.do(t, "POST", "/v1/chat/completions", token, chatBody); resp.StatusCode != 200 {
				t.Fatalf("first call: %d %s", resp.StatusCode, body)
			}
			// The first call used 7 tokens: the allowance of 5 is spent.
			resp, body := e.do(t, "POST", "/v1/chat/completions", token, chatBody)
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Ratelimit-Limit-Tokens") != "5" {
				t.Fatalf("second call: %d %s %v, want 429 with headers", resp.StatusCode, body, resp.Header)
			}
		})

		t.Run("concurrent jobs", func(t *testing.T) {
			_, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}, Limits: auth.Limits{ConcurrentJobs: 1}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/chat/completions",
				strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			if _, err := resp.Body.Read(buf); err != nil { // the stream has started
				t.Fatal(err)
			}
			jobID := resp.Header.Get("X-Neovratz-Job-Id")
			r2, body := e.do(t, "POST", "/v1/chat/completions", token, chatBody)
			if r2.StatusCode != 429 || errCode(t, body) != "concurrency_limit_exceeded" {
				t.Fatalf("second concurrent call: %d %s", r2.StatusCode, body)
			}
			cancel()
			resp.Body.Close()
			waitStatus(t, e, jobID, job.StatusCanceled)
			waitFor(t, "the slot to be released", func() bool {
				r3, _ := e.do(t, "POST", "/v1/chat/completions", token, chatBody)
				return r3.StatusCode == 200
			})
		})
	})
}

// waitStatus waits until job id has status st.
func waitStatus(t *testing.T, e *env, id string, st job.Status) job.Job {
	t.Helper()
	var j job.Job
	waitFor(t, "job "+id+" to be "+string(st), func() bool {
		var err error
		j, err = e.b.Get(context.Background(), id)
		return err == nil && j.Status == st
	})
	return j
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicas runs two API servers on one Redis: a revocation through one holds at once on the
// other, and a key's limits count the requests both serve.
func TestReplicas(t *testing.T) {
	e := newEnv(t, "redis")
	other := e.replica(t)
	get := func(base, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	k, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}})
	if code := get(other, token); code != 200 {
		t.Fatalf("the other replica before revoking: %d", code)
	}
	if resp, body := e.do(t, "DELETE", "/v1/admin/keys/"+k.ID, e.admin, ""); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if code := get(other, token); code != 401 {
		t.Errorf("the other replica after revoking: %d, want 401", code)
	}

	_, limited := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeInference}, Limits: auth.Limits{RequestsPerMinute: 2}})
	for i, base := range []string{e.url, other} {
		if code := get(base, limited); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	for _, base := range []string{e.url, other} {
		if code := get(base, limited); code != 429 {
			t.Errorf("third request (%s): %d, want 429: the replicas share the allowance", base, code)
		}
	}
}
