package httpapi

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/job"
)

const chatJob = `{"kind":"chat","input":{"model":"text","messages":[{"role":"user","content":"hi"}]}}`

func decodeJob(t *testing.T, body string) jobView {
	t.Helper()
	var v jobView
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ID == "" {
		t.Fatalf("not a job: %s (%v)", body, err)
	}
	return v
}

func TestJobs(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, jobsKey := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}})
		_, otherKey := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}})
		want := expectedChat(t, "hi", 0, 0)

		t.Run("submit and poll", func(t *testing.T) {
			resp, body := e.do(t, "POST", "/v1/jobs", jobsKey, chatJob)
			if resp.StatusCode != 202 {
				t.Fatalf("submit: %d %s", resp.StatusCode, body)
			}
			v := decodeJob(t, body)
			if v.Kind != job.KindChat || v.Model != "text" || v.Object != "job" {
				t.Errorf("submitted job = %s", body)
			}
			waitFor(t, "the job to succeed", func() bool {
				_, body = e.do(t, "GET", "/v1/jobs/"+v.ID, jobsKey, "")
				return decodeJob(t, body).Status == job.StatusSucceeded
			})
			var got struct {
				Result struct {
					Object  string `json:"object"`
					Choices []struct {
						Message struct{ Content string } `json:"message"`
					} `json:"choices"`
					Usage struct {
						TotalTokens int `json:"total_tokens"`
					} `json:"usage"`
				} `json:"result"`
			}
			_ = json.Unmarshal([]byte(body), &got)
			if got.Result.Object != "chat.completion" || got.Result.Choices[0].Message.Content != want.Choices[0].Text || got.Result.Usage.TotalTokens != want.Usage.TotalTokens {
				t.Errorf("finished job = %s", body)
			}
			// Owners only: another key gets the 404 an unknown job gets.
			if resp, body := e.do(t, "GET", "/v1/jobs/"+v.ID, otherKey, ""); resp.StatusCode != 404 || errCode(t, body) != "job_not_found" {
				t.Errorf("another key's GET: %d %s", resp.StatusCode, body)
			}
			_, body = e.do(t, "GET", "/v1/jobs?status=succeeded&limit=10", jobsKey, "")
			if !strings.Contains(body, v.ID) {
				t.Errorf("list does not hold the job: %s", body)
			}
			_, body = e.do(t, "GET", "/v1/jobs", otherKey, "")
			if strings.Contains(body, v.ID) {
				t.Errorf("another key's list holds the job: %s", body)
			}
		})

		t.Run("queue position", func(t *testing.T) {
			// No worker serves "parked": it is known to the broker from a job enqueued directly.
			parked := func() string {
				resp, body := e.do(t, "POST", "/v1/jobs", jobsKey, `{"kind":"chat","model":"parked","input":{"messages":[{"role":"user","content":"x"}]}}`)
				if resp.StatusCode != 202 {
					t.Fatalf("submit: %d %s", resp.StatusCode, body)
				}
				return decodeJob(t, body).ID
			}
			if _, _, err := e.b.Enqueue(context.Background(), job.Job{Kind: job.KindChat, Model: "parked", Input: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
			first, second := parked(), parked()
			_, body := e.do(t, "GET", "/v1/jobs/"+second, jobsKey, "")
			if v := decodeJob(t, body); v.QueuePosition != 3 || v.Status != job.StatusQueued {
				t.Errorf("second parked job: position %d status %s, want 3 queued", v.QueuePosition, v.Status)
			}
			e.do(t, "DELETE", "/v1/jobs/"+first, jobsKey, "")
			_, body = e.do(t, "GET", "/v1/jobs/"+second, jobsKey, "")
			if v := decodeJob(t, body); v.QueuePosition != 2 {
				t.Errorf("after canceling the first: position %d, want 2", v.QueuePosition)
			}
		})

		t.Run("cancel", func(t *testing.T) {
			canceledBefore := e.worker.count("slow", "canceled")
			_, body := e.do(t, "POST", "/v1/jobs", jobsKey, `{"kind":"chat","model":"slow","input":{"messages":[{"role":"user","content":"hi"}]}}`)
			id := decodeJob(t, body).ID
			waitStatus(t, e, id, job.StatusRunning)
			resp, body := e.do(t, "DELETE", "/v1/jobs/"+id, jobsKey, "")
			if resp.StatusCode != 200 || decodeJob(t, body).Status != job.StatusCanceled {
				t.Fatalf("cancel: %d %s", resp.StatusCode, body)
			}
			waitFor(t, "the worker to abort the job", func() bool { return e.worker.count("slow", "canceled") > canceledBefore })
			if resp, body := e.do(t, "DELETE", "/v1/jobs/"+id, jobsKey, ""); resp.StatusCode != 409 {
				t.Errorf("second cancel: %d %s, want 409", resp.StatusCode, body)
			}
		})

		t.Run("idempotent resubmission", func(t *testing.T) {
			r1, b1 := e.do(t, "POST", "/v1/jobs", jobsKey, chatJob, "Idempotency-Key", "order-42")
			r2, b2 := e.do(t, "POST", "/v1/jobs", jobsKey, chatJob, "Idempotency-Key", "order-42")
			if r1.StatusCode != 202 || r2.StatusCode != 200 || r2.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("statuses %d, %d (%v)", r1.StatusCode, r2.StatusCode, r2.Header)
			}
			if decodeJob(t, b1).ID != decodeJob(t, b2).ID {
				t.Errorf("resubmission made a new job: %s vs %s", b1, b2)
			}
			// The same key from another owner is another job.
			_, b3 := e.do(t, "POST", "/v1/jobs", otherKey, chatJob, "Idempotency-Key", "order-42")
			if decodeJob(t, b3).ID == decodeJob(t, b1).ID {
				t.Error("another key's resubmission returned the first key's job")
			}
		})

		t.Run("bad input", func(t *testing.T) {
			for _, body := range []string{
				`{"kind":"dance","input":{"model":"text"}}`,
				`{"kind":"chat","model":"text","input":{"model":"other","messages":[{"role":"user","content":"x"}]}}`,
				`{"kind":"chat","input":{"model":"text","messages":[]}}`,
				`{"kind":"chat","input":{"model":"text","messages":[{"role":"user","content":"x"}]},"priority":"urgent"}`,
				`{"kind":"chat","input":"text"}`,
			} {
				if resp, rb := e.do(t, "POST", "/v1/jobs", jobsKey, body); resp.StatusCode != 400 {
					t.Errorf("%s: %d %s, want 400", body, resp.StatusCode, rb)
				}
			}
			if resp, _ := e.do(t, "POST", "/v1/jobs", jobsKey, `{"kind":"chat","input":{"model":"nope","messages":[{"role":"user","content":"x"}]}}`); resp.StatusCode != 404 {
				t.Errorf("unknown model: %d, want 404", resp.StatusCode)
			}
		})

		t.Run("events resume", func(t *testing.T) {
			_, body := e.do(t, "POST", "/v1/jobs", jobsKey, chatJob)
			id := decodeJob(t, body).ID
			first := readEvents(t, e, id, jobsKey, "", 2) // then the connection drops
			if len(first) != 2 {
				t.Fatalf("first connection read %d events", len(first))
			}
			rest := readEvents(t, e, id, jobsKey, first[1].id, -1)
			all := append(first, rest...)
			seen := map[string]bool{}
			var text strings.Builder
			for _, ev := range all[:len(all)-1] {
				if seen[ev.id] {
					t.Errorf("event %s seen twice", ev.id)
				}
				seen[ev.id] = true
				if ev.typ == "delta" {
					var d struct{ Text string }
					_ = json.Unmarshal([]byte(ev.data), &d)
					text.WriteString(d.Text)
				}
			}
			last := all[len(all)-1]
			if last.typ != "job" || !strings.Contains(last.data, `"status":"succeeded"`) {
				t.Errorf("last event = %+v, want the finished job", last)
			}
			if all[len(all)-2].typ != "status" || !strings.Contains(all[len(all)-2].data, "succeeded") {
				t.Errorf("event before the job = %+v, want the final status", all[len(all)-2])
			}
			if text.String() != want.Choices[0].Text {
				t.Errorf("deltas across the two connections = %q", text.String())
			}
			// Resuming after the end gets the finished job at once.
			after := readEvents(t, e, id, jobsKey, all[len(all)-2].id, -1)
			if len(after) != 1 || after[0].typ != "job" {
				t.Errorf("resume after the end: %+v", after)
			}
			if resp, _ := e.do(t, "GET", "/v1/jobs/"+id+"/events", jobsKey, "", "Last-Event-ID", "garbage"); resp.StatusCode != 400 {
				t.Errorf("garbage Last-Event-ID: %d, want 400", resp.StatusCode)
			}
		})

		t.Run("webhook", func(t *testing.T) {
			secret := "whsec_0123456789abcdef"
			var mu sync.Mutex
			var calls int
			got := make(chan string, 1)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n == 1 {
					w.WriteHeader(500) // the first try fails: the delivery is retried
					return
				}
				if !validSignature(r.Header.Get(HeaderSignature), secret, body) {
					t.Errorf("bad signature %q", r.Header.Get(HeaderSignature))
				}
				if r.Header.Get(HeaderEvent) != "job.finished" {
					t.Errorf("event header %q", r.Header.Get(HeaderEvent))
				}
				got <- string(body)
			}))
			defer recv.Close()
			resp, body := e.do(t, "POST", "/v1/jobs", jobsKey, `{"kind":"chat","input":{"model":"text","messages":[{"role":"user","content":"hi"}]},`+
				`"webhook":{"url":"`+recv.URL+`/hook?token=x","secret":"`+secret+`"}}`)
			if resp.StatusCode != 202 {
				t.Fatalf("submit: %d %s", resp.StatusCode, body)
			}
			id := decodeJob(t, body).ID
			select {
			case payload := <-got:
				if !strings.Contains(payload, `"type":"job.finished"`) || !strings.Contains(payload, id) || !strings.Contains(payload, want.Choices[0].Text) {
					t.Errorf("payload = %s", payload)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no webhook delivery")
			}
			if strings.Contains(e.logs.String(), "token=x") {
				t.Error("the webhook URL's query reached the log")
			}
			if resp, body := e.do(t, "POST", "/v1/jobs", jobsKey, `{"kind":"chat","input":{"model":"text","messages":[{"role":"user","content":"hi"}]},"webhook":{"url":"ftp://x","secret":"short"}}`); resp.StatusCode != 400 {
				t.Errorf("bad webhook: %d %s", resp.StatusCode, body)
			}
		})
	})
}

// validSignature checks a Neovratz-Signature header as a receiver would.
func validSignature(header, secret string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)) > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(sig), []byte(want))
}

type sseEvent struct{ id, typ, data string }

// readEvents reads job id's event stream after lastID; with n >= 0 it drops the connection
// after n events, otherwise it reads to the end of the stream.
func readEvents(t *testing.T, e *env, id, token, lastID string, n int) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/v1/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		case line == "" && cur.typ != "":
			out = append(out, cur)
			cur = sseEvent{}
			if len(out) == n {
				return out
			}
		}
	}
	return out
}
