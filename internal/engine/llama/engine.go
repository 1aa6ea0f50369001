package llama

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/neovratz/neovratz/internal/engine/llama/chattemplate"
	"github.com/neovratz/neovratz/internal/engine/llama/sample"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
)

// Config configures an Engine.
type Config struct {
	// Threads is the number of goroutines a forward pass uses; 0 means one per CPU.
	Threads int
	// Context caps the positions of one sequence (prompt and generated tokens); 0 or more than
	// the model's context_length means the model's.
	Context int
	// Sequences is how many sequences run at once (each choice of a request is one); others
	// wait. 0 means 8.
	Sequences int
	// BatchTokens is the most tokens one forward pass takes: prompts are fed in chunks so that
	// running sequences keep generating while a long prompt is read. 0 means 512.
	BatchTokens int
	// Sampling holds the values used for the sampling parameters a request leaves out.
	// The zero value means llama-server's defaults (DefaultSampling).
	Sampling *sample.Params
}

// DefaultSampling is llama-server's default sampler: temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05, no penalties.
var DefaultSampling = sample.Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, PenaltyLastN: 64}

// Engine serves text generation on one Model: it implements the worker's TextEngine. One
// goroutine, started by NewEngine and stopped by Close, runs every forward pass; the
// sequences of all requests in flight advance together, one batched pass per token.
type Engine struct {
	m        *Model
	runner   *Runner
	cfg      Config
	ctx      int
	sampling sample.Params

	submit chan []*sequence
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewEngine starts an engine on m. The engine does not own m: close the engine, then m.
func NewEngine(m *Model, cfg Config) (*Engine, error) {
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Sequences <= 0 {
		cfg.Sequences = 8
	}
	if cfg.BatchTokens <= 0 {
		cfg.BatchTokens = 512
	}
	ctx := m.Params.ContextLen
	if cfg.Context > 0 && cfg.Context < ctx {
		ctx = cfg.Context
	}
	if _, err := m.template(); err != nil {
		return nil, err
	}
	e := &Engine{m: m, runner: m.NewRunner(cfg.Threads, ctx), cfg: cfg, ctx: ctx, sampling: DefaultSampling,
		submit: make(chan []*sequence), quit: make(chan struct{}), done: make(chan struct{})}
	if cfg.Sampling != nil {
		e.sampling = *cfg.Sampling
	}
	go e.loop()
	return e, nil
}

// Close stops the engine; requests in flight fail. It does not close the model.
func (e *Engine) Close() error {
	e.once.Do(func() {
		close(e.quit)
		<-e.done
		e.runner.Close()
	})
	<-e.done
	return nil
}

// Context returns the most positions one sequence may hold.
func (e *Engine) Context() int { return e.ctx }

// ErrClosed is returned for requests to a closed engine.
var ErrClosed = errors.New("llama engine closed")

// Prompt returns the token ids a request's input becomes: for a chat, the chat template
// rendered with the messages (Model.ChatPrompt); for a completion, the prompt tokenized as
// llama-server does, with special tokens recognised (Model.Encode).
func (e *Engine) Prompt(req inference.TextRequest) ([]int32, error) {
	if !req.Chat() {
		return e.m.Encode(req.Prompt, true), nil
	}
	msgs := make([]chattemplate.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = chattemplate.Message{Role: m.Role, Content: string(m.Content)}
	}
	ids, err := e.m.ChatPrompt(msgs)
	if err != nil {
		return nil, &inference.BadRequestError{Param: "messages", Reason: "the model's chat template cannot render them: " + err.Error()}
	}
	return ids, nil
}

// samplerParams merges a request's sampling fields over the engine's defaults.
func (e *Engine) samplerParams(s openai.Sampling, choice int) sample.Params {
	p := e.sampling
	if s.Temperature != nil {
		p.Temperature = *s.Temperature
	}
	if s.TopP != nil {
		p.TopP = *s.TopP
	}
	if s.TopK != nil {
		p.TopK = *s.TopK
	}
	if s.MinP != nil {
		p.MinP = *s.MinP
	}
	if s.PresencePenalty != nil {
		p.PresencePenalty = *s.PresencePenalty
	}
	if s.FrequencyPenalty != nil {
		p.FrequencyPenalty = *s.FrequencyPenalty
	}
	if s.RepetitionPenalty != nil {
		p.RepeatPenalty = *s.RepetitionPenalty
	}
	if s.Seed != nil {
		p.Seed = uint64(*s.Seed) + uint64(choice)
	} else {
		p.Seed = rand.Uint64()
	}
	return p
}

// GenerateText runs a chat or completion request: each of its N choices is a sequence that
// joins the running batch. Text is emitted as whole UTF-8 characters, holding back what might
// be the start of a stop string.
func (e *Engine) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	prompt, err := e.Prompt(req)
	if err != nil {
		return inference.TextResult{}, err
	}
	if len(prompt) >= e.ctx {
		param := "prompt"
		if req.Chat() {
			param = "messages"
		}
		return inference.TextResult{}, &inference.BadRequestError{Param: param,
			Reason: fmt.Sprintf("the prompt has %d tokens; the context holds %d, with room for at least one more", len(prompt), e.ctx)}
	}
	n := max(req.N, 1)
	maxTokens := req.MaxTokens
	if maxTokens <= 0 || maxTokens > e.ctx-len(prompt) {
		maxTokens = e.ctx - len(prompt)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan event, n*(maxTokens+2))
	seqs := make([]*sequence, n)
	for i := range seqs {
		seqs[i] = e.newSequence(ctx, i, prompt, maxTokens, req, events)
	}
	select {
	case e.submit <- seqs:
	case <-e.quit:
		return inference.TextResult{}, ErrClosed
	case <-ctx.Done():
		return inference.TextResult{}, ctx.Err()
	}

	res := inference.TextResult{Choices: make([]inference.TextChoice, n), Usage: openai.Usage{PromptTokens: len(prompt)}}
	texts := make([][]byte, n)
	for i := range res.Choices {
		res.Choices[i].Index = i
	}
	for open := n; open > 0; {
		var ev event
		select {
		case ev = <-events:
		case <-ctx.Done():
			return inference.TextResult{}, ctx.Err()
		case <-e.done:
			return inference.TextResult{}, ErrClosed
		}
		if ev.err != nil {
			return inference.TextResult{}, ev.err
		}
		c := &res.Choices[ev.index]
		if ev.text != "" || ev.logprob != nil {
			d := inference.TextDelta{Index: ev.index, Text: ev.text}
			if ev.logprob != nil && req.Logprobs {
				d.Logprobs = []openai.TokenLogprob{*ev.logprob}
				c.Logprobs = append(c.Logprobs, *ev.logprob)
			}
			texts[ev.index] = append(texts[ev.index], ev.text...)
			if err := emit(d); err != nil {
				return inference.TextResult{}, err
			}
		}
		if ev.finish != "" {
			c.FinishReason = ev.finish
			res.Usage.CompletionTokens += ev.tokens
			open--
		}
	}
	for i := range res.Choices {
		res.Choices[i].Text = string(texts[i])
	}
	res.Usage.TotalTokens = res.Usage.PromptTokens + res.Usage.CompletionTokens
	return res, nil
}

// event is what the engine loop tells a request about one of its sequences.
type event struct {
	index   int
	text    string
	logprob *openai.TokenLogprob
	finish  string // set on the last event of a sequence
	tokens  int    // tokens generated, on the last event
	err     error
}
