package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
)

// engine is the fixed-latency stand-in for an inference engine.
type engine struct {
	latency time.Duration
	tokens  int
}

// generate waits the engine's latency and returns its answer.
func (e engine) generate(ctx context.Context) (inference.TextResult, error) {
	t := time.NewTimer(e.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return inference.TextResult{}, ctx.Err()
	case <-t.C:
	}
	text := strings.TrimSpace(strings.Repeat("tok ", e.tokens))
	return inference.TextResult{
		Choices: []inference.TextChoice{{Text: text, FinishReason: openai.FinishStop}},
		Usage:   openai.Usage{PromptTokens: 5, CompletionTokens: e.tokens, TotalTokens: 5 + e.tokens},
	}, nil
}

// server is an HTTP server on 127.0.0.1:0.
type server struct {
	url   string
	token string
	close func()
}

// startDirect serves the engine as an upstream engine server would: decode the request, call
// the engine, encode the OpenAI response.
func startDirect(e engine) (*server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var req openai.ChatCompletionRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if _, err := inference.FromChat(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		res, err := e.generate(r.Context())
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
