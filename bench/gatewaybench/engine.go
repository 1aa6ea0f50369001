package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// newEngine is the sim engine (internal/engine/sim) with a fixed latency: it waits latency
// before the first token and streams the rest at once.
func newEngine(latency time.Duration, tokens int) *sim.Engine {
	return sim.New(sim.Config{TimeToFirstToken: latency, Tokens: tokens})
}

// server is an HTTP server on 127.0.0.1:0.
type server struct {
	url   string
	token string
	close func()
	// commands, when set, reads how many commands the Redis has processed so far.
	commands func() int64
	// redisCPU, when set, reads the CPU time the Redis server has used so far.
	redisCPU func() time.Duration
	// jobs, when set, lists the jobs the gateway ran.
	jobs func() []job.Job
}

// startDirect serves the engine as an upstream engine server would: decode the request, call
// the engine, encode the OpenAI response.
func startDirect(e *sim.Engine) (*server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var req openai.ChatCompletionRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tr, err := inference.FromChat(&req)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		res, err := e.GenerateText(r.Context(), tr, func(inference.TextDelta) error { return nil })
		if err != nil {
			return
		}
		u := res.Usage
		out := openai.ChatCompletion{ID: "chatcmpl-direct", Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model, Usage: &u,
			Choices: []openai.ChatChoice{{Message: openai.ResponseMessage{Role: "assistant", Content: res.Choices[0].Text}, FinishReason: "stop"}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return listen(mux)
}

func listen(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &server{url: "http://" + ln.Addr().String(), close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}}, nil
}
