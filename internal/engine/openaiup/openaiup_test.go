package openaiup_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/openaiup"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

var (
	_ worker.TextEngine      = (*openaiup.Engine)(nil)
	_ worker.EmbeddingEngine = (*openaiup.Engine)(nil)
	_ worker.HealthChecker   = (*openaiup.Engine)(nil)
)

// The upstream in these tests is a real second neovratz — embedded broker, HTTP API, a worker on
// the sim engine — started in-process by workertest: the engine is checked against the same
// server its users run, not against a fake of it. Its output must equal what the sim engine
// produces when called directly.
var simConfig = sim.Config{Tokens: 10, InterTokenLatency: time.Millisecond, EmbeddingDim: 16}

func newEngine(t *testing.T, cfg openaiup.Config) *openaiup.Engine {
	t.Helper()
	e, err := openaiup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func collect(t *testing.T, e worker.TextEngine, req inference.TextRequest) (inference.TextResult, []inference.TextDelta, error) {
	t.Helper()
	var deltas []inference.TextDelta
	res, err := e.GenerateText(context.Background(), req, func(d inference.TextDelta) error {
		deltas = append(deltas, d)
		return nil
	})
	return res, deltas, err
}

func TestTextAgainstNeovratz(t *testing.T) {
	up := workertest.New(t, workertest.Options{Sim: simConfig})
	e := newEngine(t, openaiup.Config{BaseURL: up.URL + "/v1", Slots: 4})
	direct := sim.New(simConfig)
	user := []openai.Message{{Role: "user", Content: "tell me about the sea"}}
	seed := int64(7)
	tests := []struct {
		name string
		req  inference.TextRequest
	}{
		{"chat", inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 1}},
		{"chat max tokens", inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 1, MaxTokens: 4}},
		{"chat seed", inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 1, Sampling: openai.Sampling{Seed: &seed}}},
		{"chat two choices", inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 2}},
		{"chat logprobs", inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 1, Logprobs: true, TopLogprobs: 2}},
		{"completion", inference.TextRequest{Model: workertest.TextModel, Prompt: "once upon a time", N: 1, MaxTokens: 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, _, err := collect(t, direct, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got, deltas, err := collect(t, e, tc.req)
			if err != nil {
				t.Fatalf("GenerateText: %v", err)
			}
			if len(got.Choices) != len(want.Choices) {
				t.Fatalf("%d choices, want %d", len(got.Choices), len(want.Choices))
			}
			streamed := make([]string, len(got.Choices))
			for _, d := range deltas {
				streamed[d.Index] += d.Text
			}
			for i, c := range got.Choices {
				w := want.Choices[i]
				if c.Text != w.Text || c.FinishReason != w.FinishReason {
					t.Errorf("choice %d: %q (%s), want %q (%s)", i, c.Text, c.FinishReason, w.Text, w.FinishReason)
				}
				if streamed[i] != c.Text {
					t.Errorf("choice %d: deltas join to %q, result %q", i, streamed[i], c.Text)
				}
				if tc.req.Logprobs && len(c.Logprobs) != len(w.Logprobs) {
					t.Errorf("choice %d: %d logprobs, want %d", i, len(c.Logprobs), len(w.Logprobs))
				}
			}
			if got.Usage.CompletionTokens != want.Usage.CompletionTokens {
				t.Errorf("usage %+v, want %+v", got.Usage, want.Usage)
			}
			if len(deltas) < 2 {
				t.Errorf("%d deltas: the answer was not streamed", len(deltas))
			}
		})
	}
}

func TestEmbedAgainstNeovratz(t *testing.T) {
	up := workertest.New(t, workertest.Options{Sim: simConfig})
	e := newEngine(t, openaiup.Config{BaseURL: up.URL + "/v1"})
	req := inference.EmbeddingRequest{Model: workertest.EmbeddingModel, Input: []string{"first input", "second"}}
	want, _ := sim.New(simConfig).Embed(context.Background(), req)
	got, err := e.Embed(context.Background(), req)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if !reflect.DeepEqual(got.Embeddings, want.Embeddings) {
		t.Errorf("embeddings differ from the sim engine's")
	}
	if got.Usage.PromptTokens != want.Usage.PromptTokens {
		t.Errorf("usage %+v, want %+v", got.Usage, want.Usage)
	}
}

func TestUpstreamErrors(t *testing.T) {
	up := workertest.New(t, workertest.Options{Sim: simConfig})
	user := []openai.Message{{Role: "user", Content: "hi"}}
	hot := 9.0

	t.Run("neovratz rejects a parameter", func(t *testing.T) {
		e := newEngine(t, openaiup.Config{BaseURL: up.URL + "/v1"})
		_, _, err := collect(t, e, inference.TextRequest{Model: workertest.TextModel, Messages: user, N: 1, Sampling: openai.Sampling{Temperature: &hot}})
		if !errors.Is(err, inference.ErrBadRequest) || worker.IsRetryable(err) || !strings.Contains(err.Error(), "temperature") {
			t.Errorf("err = %v, want a non-retryable bad request about temperature", err)
		}
	})

	// Statuses neovratz does not produce on demand come from a plain handler.
	statuses := []struct {
		status    int
		body      string
		retryable bool
		bad       bool
	}{
		{500, `{"error":{"message":"CUDA out of memory","type":"server_error"}}`, true, false},
		{503, `upstream busy`, true, false},
		{429, `{"error":{"message":"slow down"}}`, true, false},
		{400, `{"error":{"message":"This model's maximum context length is 4096 tokens","param":"messages"}}`, false, true},
		{401, `{"error":{"message":"bad key"}}`, false, false},
		{404, `{"error":"model not found"}`, false, false},
	}
	for _, st := range statuses {
		t.Run(fmt.Sprint(st.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(st.status)
				fmt.Fprint(w, st.body)
			}))
			defer srv.Close()
			e := newEngine(t, openaiup.Config{BaseURL: srv.URL + "/v1"})
			_, _, err := collect(t, e, inference.TextRequest{Model: "m", Messages: user, N: 1})
			var se *openaiup.StatusError
			if !errors.As(err, &se) || se.Status != st.status {
				t.Fatalf("err = %v, want a StatusError %d", err, st.status)
			}
			if worker.IsRetryable(err) != st.retryable || errors.Is(err, inference.ErrBadRequest) != st.bad {
				t.Errorf("err %v: retryable %v, bad request %v; want %v, %v", err, worker.IsRetryable(err), errors.Is(err, inference.ErrBadRequest), st.retryable, st.bad)
			}
			if st.bad && !strings.Contains(err.Error(), "maximum context length") {
				t.Errorf("bad request message %q lacks the upstream's words", err)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		e := newEngine(t, openaiup.Config{BaseURL: "http://" + addr + "/v1"})
		_, _, err := collect(t, e, inference.TextRequest{Model: "m", Messages: user, N: 1})
		if !worker.IsRetryable(err) {
			t.Errorf("err = %v, want retryable", err)
		}
		if e.Health(context.Background()) == nil {
			t.Error("Health of a closed port = nil, want an error")
		}
	})

	t.Run("stall", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		e := newEngine(t, openaiup.Config{BaseURL: srv.URL + "/v1", StallTimeout: 200 * time.Millisecond})
		_, deltas, err := collect(t, e, inference.TextRequest{Model: "m", Messages: user, N: 1})
		if !worker.IsRetryable(err) || len(deltas) != 1 {
			t.Errorf("err = %v after %d deltas, want retryable after 1", err, len(deltas))
		}
	})

	t.Run("stream cut short", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n")
		}))
		defer srv.Close()
		e := newEngine(t, openaiup.Config{BaseURL: srv.URL + "/v1"})
		_, _, err := collect(t, e, inference.TextRequest{Model: "m", Messages: user, N: 1})
		if !worker.IsRetryable(err) {
			t.Errorf("err = %v, want retryable (no [DONE])", err)
		}
	})
}

// TestSlotsAndCancel: no more than Slots requests reach the upstream at once, and canceling the
// caller's context ends a request at once (the neovratz upstream then cancels its job).
func TestSlotsAndCancel(t *testing.T) {
	up := workertest.New(t, workertest.Options{Sim: sim.Config{Tokens: 20, InterTokenLatency: 20 * time.Millisecond}})
	var inFlight, peak atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		var once sync.Once
		done := func() { once.Do(func() { inFlight.Add(-1) }) }
		defer done()
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		target := *r.URL
		target.Scheme, target.Host = "http", strings.TrimPrefix(up.URL, "http://")
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target.String(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if strings.Contains(string(buf[:n]), "[DONE]") {
				done() // the client may release its slot as soon as it reads this
			}
			if n > 0 {
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	defer proxy.Close()

	e := newEngine(t, openaiup.Config{BaseURL: proxy.URL + "/v1", Slots: 2})
	req := inference.TextRequest{Model: workertest.TextModel, Messages: []openai.Message{{Role: "user", Content: "x"}}, N: 1, MaxTokens: 5}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, _, err := collect(t, e, req); err != nil {
				t.Errorf("GenerateText: %v", err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak requests in flight = %d, want 2 (the slots)", p)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var got int
	start := time.Now()
	_, err := e.GenerateText(ctx, inference.TextRequest{Model: workertest.TextModel, Messages: req.Messages, N: 1}, func(d inference.TextDelta) error {
		if got++; got == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || worker.IsRetryable(err) {
		t.Errorf("after cancel: %v, want context.Canceled, not retryable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("canceled request took %v", d)
	}
	if err := e.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}
}
