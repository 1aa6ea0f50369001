package client

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

// The tests run a whole neovratz in-process (workertest: the embedded broker, the HTTP API and a
// worker on the sim engine), so the client is checked against the real server.

func newClient(t *testing.T, baseURL string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: baseURL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// simReply is what the sim engine answers to msgs.
func simReply(t *testing.T, cfg sim.Config, msgs ...openai.Message) string {
	t.Helper()
	res, err := sim.New(cfg).GenerateText(context.Background(), inference.TextRequest{Model: workertest.TextModel, Messages: msgs, N: 1},
		func(inference.TextDelta) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res.Choices[0].Text
}

func TestChat(t *testing.T) {
	cfg := sim.Config{InterTokenLatency: time.Millisecond}
	s := workertest.New(t, workertest.Options{Sim: cfg})
	c := newClient(t, s.URL)
	msgs := []Message{{"system", "be brief"}, {"user", "hi"}, {"assistant", "hello"}, {"user", "how are you?"}}
	var deltas []string
	res, err := c.Chat(ctxT(t), ChatRequest{Model: workertest.TextModel, Messages: msgs}, func(d string) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatal(err)
	}
	want := simReply(t, cfg, openai.Message{Role: "system", Content: "be brief"}, openai.Message{Role: "user", Content: "hi"},
		openai.Message{Role: "assistant", Content: "hello"}, openai.Message{Role: "user", Content: "how are you?"})
	if res.Text != want || strings.Join(deltas, "") != want || len(deltas) < 2 {
		t.Errorf("reply %q from %d deltas, want %q streamed", res.Text, len(deltas), want)
	}
	if res.FinishReason != "stop" || res.CompletionTokens != 16 || res.PromptTokens == 0 {
		t.Errorf("finish %q usage %d+%d", res.FinishReason, res.PromptTokens, res.CompletionTokens)
	}
}

func TestChatErrors(t *testing.T) {
	s := workertest.New(t, workertest.Options{})
	c := newClient(t, s.URL)
	_, err := c.Chat(ctxT(t), ChatRequest{Model: "nope", Messages: []Message{{"user", "hi"}}}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "model_not_found" ||
		err.Error() != `The model "nope" does not exist or no worker serves it. (HTTP 404)` {
		t.Fatalf("err = %v (%T), want the server's message", err, err)
	}

	// No server at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c = newClient(t, "http://"+addr)
	_, err = c.Chat(ctxT(t), ChatRequest{Model: "m", Messages: []Message{{"user", "hi"}}}, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, addr)
	}
}

func TestGenerateImageWithProgress(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: sim.Config{ImageSteps: 5, ImageStepTime: 2 * time.Millisecond}})
	c := newClient(t, s.URL)
	var progress []ImageProgress
	res, err := c.GenerateImage(ctxT(t), ImageRequest{Model: workertest.ImageModel, Prompt: "a red fox", N: 2, Size: "64x128", Steps: 3},
		func(p ImageProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || !strings.HasPrefix(res.JobID, "job_") {
		t.Fatalf("got %d images from job %q", len(res.Images), res.JobID)
	}
	img, err := png.Decode(bytes.NewReader(res.Images[1]))
	if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 128 {
		t.Fatalf("image 1 is not a 64x128 PNG (%v)", err)
	}
	// The worker may merge progress events that pile up, but the last step of each image shows.
	if len(progress) == 0 {
		t.Fatal("no progress")
	}
	last := progress[len(progress)-1]
	if last != (ImageProgress{Image: 1, Images: 2, Step: 3, Steps: 3}) {
		t.Errorf("last progress %+v, want step 3 of 3 of image 2 of 2", last)
	}
}

func TestGenerateImageErrors(t *testing.T) {
	s := workertest.New(t, workertest.Options{})
	c := newClient(t, s.URL)
	_, err := c.GenerateImage(ctxT(t), ImageRequest{Model: workertest.ImageModel, Prompt: "x", Size: "63x64"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "size") {
		t.Fatalf("err = %v, want the server's 400 about the size", err)
	}
}

func TestGenerateImageCanceled(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: sim.Config{ImageSteps: 1000, ImageStepTime: 10 * time.Millisecond}})
	c := newClient(t, s.URL)
	ctx, cancel := context.WithCancel(ctxT(t))
	var once sync.Once
	_, err := c.GenerateImage(ctx, ImageRequest{Model: workertest.ImageModel, Prompt: "slow", Size: "64x64"}, func(p ImageProgress) {
		once.Do(cancel) // the person pressed Ctrl-C once the generation showed progress
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	// The job the client gave up on was canceled on the server.
	jobs, _, err := s.Broker.List(context.Background(), broker.ListFilter{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs = %v, %v", jobs, err)
	}
	if jobs[0].Status != job.StatusCanceled {
		t.Errorf("job status %s, want canceled", jobs[0].Status)
	}
}

// TestGenerateImageWithoutJobsAPI puts a proxy in front of the real server that answers the jobs
// API the way a server without it would (a plain-text 404), and the way neovratz answers a key
// without the jobs scope (403 insufficient_scope): the client falls back to the images API.
func TestGenerateImageWithoutJobsAPI(t *testing.T) {
	s := workertest.New(t, workertest.Options{})
	target, _ := url.Parse(s.URL)
	for _, tt := range []struct {
		name string
		deny func(w http.ResponseWriter)
	}{
		{"no jobs API", func(w http.ResponseWriter) { http.NotFound(w, nil) }},
		{"key without the jobs scope", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"message":"This API key lacks the jobs scope.","type":"permission_error","param":null,"code":"insufficient_scope"}}`))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxy := httputil.NewSingleHostReverseProxy(target)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/jobs") {
					tt.deny(w)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(front.Close)
			c := newClient(t, front.URL)
			calls := 0
			res, err := c.GenerateImage(ctxT(t), ImageRequest{Model: workertest.ImageModel, Prompt: "a fox", Size: "64x64"}, func(ImageProgress) { calls++ })
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != 1 || res.JobID != "" || calls != 0 {
				t.Fatalf("%d images, job %q, %d progress calls; want one image from the images API", len(res.Images), res.JobID, calls)
			}
			if _, err := png.Decode(bytes.NewReader(res.Images[0])); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSSEReader(t *testing.T) {
	in := ": keep-alive\n\nid: 1\nevent: progress\ndata: {\"step\":1}\n\nid: 2\r\ndata: a\r\ndata: b\r\n\r\nid: 3\ndata: cut"
	r := newSSEReader(strings.NewReader(in))
	ev, err := r.next()
	if err != nil || ev.id != "1" || ev.typ != "progress" || string(ev.data) != `{"step":1}` {
		t.Fatalf("event 1 = %+v, %v", ev, err)
	}
	ev, err = r.next()
	if err != nil || ev.id != "2" || ev.typ != "" || string(ev.data) != "a\nb" {
		t.Fatalf("event 2 = %+v, %v", ev, err)
	}
	if _, err = r.next(); err == nil {
		t.Fatal("an event cut short was returned")
	}
}
