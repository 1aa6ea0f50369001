package openaiup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// GenerateText streams a chat or completion from the upstream, emitting each chunk's text as it
// arrives.
func (e *Engine) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	release, err := e.acquire(ctx)
	if err != nil {
		return inference.TextResult{}, err
	}
	defer release()

	c := e.newCall(ctx)
	defer c.done()
	path, body := e.textBody(req)
	resp, err := e.post(c, path, body)
	if err != nil {
		return inference.TextResult{}, e.fail(ctx, c, err)
	}
	defer resp.Body.Close()

	acc := newAccumulator(max(req.N, 1))
	err = readEvents(resp.Body, func(data []byte) error {
		deltas, err := acc.chunk(data, req.Chat())
		if err != nil {
			return err
		}
		for _, d := range deltas {
			if err := emit(d); err != nil {
				return &emitError{err}
			}
		}
		return nil
	})
	var ee *emitError
	switch {
	case errors.As(err, &ee):
		return inference.TextResult{}, ee.err
	case err != nil:
		return inference.TextResult{}, e.fail(ctx, c, err)
	}
	return acc.result(), nil
}

// emitError carries an error of the worker's emit through the stream reader unchanged.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }

// fail classifies an error of a call: the upstream's own statuses and errors as they are, the
// caller's cancellation as it is, and any other failure (transport, stall, broken stream) as
// retryable.
func (e *Engine) fail(ctx context.Context, c *call, err error) error {
	var se *StatusError
	var ue *upstreamError
	if errors.As(err, &se) || errors.As(err, &ue) {
		return err
	}
	return c.err(ctx, err)
}

// textBody builds the upstream request: always streamed, with usage in the last chunk.
func (e *Engine) textBody(req inference.TextRequest) (string, any) {
	var maxTokens, n *int
	if req.MaxTokens > 0 {
		maxTokens = &req.MaxTokens
	}
	if req.N > 1 {
		n = &req.N
	}
	usage := &openai.StreamOptions{IncludeUsage: true}
	if req.Chat() {
		body := openai.ChatCompletionRequest{Model: e.model(req.Model), Messages: req.Messages, MaxTokens: maxTokens,
			Stream: true, StreamOptions: usage, Sampling: req.Sampling, Logprobs: req.Logprobs, N: n}
		if req.Logprobs {
			body.TopLogprobs = &req.TopLogprobs
		}
		return "/chat/completions", body
	}
	body := openai.CompletionRequest{Model: e.model(req.Model), Prompt: openai.Prompt{req.Prompt}, MaxTokens: maxTokens,
		Stream: true, StreamOptions: usage, Sampling: req.Sampling, N: n}
	if req.Logprobs {
		body.Logprobs = &req.TopLogprobs
	}
	return "/completions", body
}

// upstreamError is an error object the upstream sent inside a stream (vLLM and others do when a
// generation fails after the 200 status went out). It is worth a retry.
type upstreamError struct{ msg string }

func (e *upstreamError) Error() string   { return "upstream stream error: " + e.msg }
func (e *upstreamError) Retryable() bool { return true }

// accumulator gathers the choices of a stream.
type accumulator struct {
	text     []strings.Builder
	logprobs [][]openai.TokenLogprob
	finish   []string
	chunks   []int // chunks with text per choice, the token count when the upstream sends none
	usage    *openai.Usage
}

func newAccumulator(n int) *accumulator {
	return &accumulator{text: make([]strings.Builder, n), logprobs: make([][]openai.TokenLogprob, n),
		finish: make([]string, n), chunks: make([]int, n)}
}

// streamChunk is a chat or completion chunk, or an error object.
type streamChunk struct {
	Choices []struct {
		Index        int               `json:"index"`
		Delta        *openai.ChatDelta `json:"delta"`    // chat
		Text         *string           `json:"text"`     // completion
		Logprobs     json.RawMessage   `json:"logprobs"` // chat or legacy shape
		FinishReason *string           `json:"finish_reason"`
	} `json:"choices"`
	Usage *openai.Usage   `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// chunk reads one event's data and returns the deltas it carries.
func (a *accumulator) chunk(data []byte, chat bool) ([]inference.TextDelta, error) {
	var ch streamChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return nil, worker.Retryablef("upstream sent a chunk that is not JSON: %w", err)
	}
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		var eb openai.ErrorBody
		msg := string(ch.Error)
		if json.Unmarshal(ch.Error, &eb) == nil && eb.Message != "" {
			msg = eb.Message
		}
		return nil, &upstreamError{msg: msg}
	}
	if ch.Usage != nil {
		a.usage = ch.Usage
	}
	var out []inference.TextDelta
	for _, c := range ch.Choices {
		if c.Index < 0 || c.Index >= len(a.text) {
			return nil, worker.Retryablef("upstream sent choice %d of %d", c.Index, len(a.text))
		}
		var text string
		switch {
		case chat && c.Delta != nil:
			text = c.Delta.Content
		case !chat && c.Text != nil:
			text = *c.Text
		}
		lps, err := parseLogprobs(c.Logprobs, chat)
		if err != nil {
			return nil, worker.Retryablef("upstream logprobs: %w", err)
		}
		if text != "" || len(lps) > 0 {
			a.text[c.Index].WriteString(text)
			a.logprobs[c.Index] = append(a.logprobs[c.Index], lps...)
			a.chunks[c.Index]++
			out = append(out, inference.TextDelta{Index: c.Index, Text: text, Logprobs: lps})
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			a.finish[c.Index] = *c.FinishReason
		}
	}
	return out, nil
}

func (a *accumulator) result() inference.TextResult {
	var res inference.TextResult
	total := 0
	for i := range a.text {
		reason := openai.FinishStop
		if a.finish[i] == openai.FinishLength {
			reason = openai.FinishLength
		}
		res.Choices = append(res.Choices, inference.TextChoice{Index: i, Text: a.text[i].String(), FinishReason: reason, Logprobs: a.logprobs[i]})
		total += a.chunks[i]
	}
	if a.usage != nil {
		res.Usage = *a.usage
	} else {
		// The upstream sent no usage: count a token per chunk, which streaming servers send.
		res.Usage = openai.Usage{CompletionTokens: total, TotalTokens: total}
	}
	return res
}

// parseLogprobs reads a chunk choice's logprobs: chat's {"content": [...]} or the legacy
// {"tokens", "token_logprobs", "top_logprobs"} of completions.
func parseLogprobs(raw json.RawMessage, chat bool) ([]openai.TokenLogprob, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if chat {
		var lp openai.ChatLogprobs
		if err := json.Unmarshal(raw, &lp); err != nil {
			return nil, err
		}
		return lp.Content, nil
	}
	var lp openai.CompletionLogprobs
	if err := json.Unmarshal(raw, &lp); err != nil {
		return nil, err
	}
	if len(lp.TokenLogprobs) != len(lp.Tokens) {
		return nil, fmt.Errorf("%d tokens but %d logprobs", len(lp.Tokens), len(lp.TokenLogprobs))
	}
	out := make([]openai.TokenLogprob, len(lp.Tokens))
	for i, tok := range lp.Tokens {
		out[i] = openai.TokenLogprob{Token: tok, Logprob: lp.TokenLogprobs[i], Bytes: bytesOf(tok), TopLogprobs: []openai.TopLogprob{}}
		if i < len(lp.TopLogprobs) {
			for t, l := range lp.TopLogprobs[i] {
				out[i].TopLogprobs = append(out[i].TopLogprobs, openai.TopLogprob{Token: t, Logprob: l, Bytes: bytesOf(t)})
			}
			sort.Slice(out[i].TopLogprobs, func(a, b int) bool { return out[i].TopLogprobs[a].Logprob > out[i].TopLogprobs[b].Logprob })
		}
	}
	return out, nil
}

func bytesOf(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
