package llama

import (
	"context"
	"fmt"
	"strings"

	"github.com/neovratz/neovratz/internal/engine/llama/sample"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

// sequence is one choice of one request while the engine loop runs it.
type sequence struct {
	ctx       context.Context
	index     int
	prompt    []int32
	fed       int // prompt tokens already in the cache
	next      int32
	generated int
	maxTokens int
	topLogp   int
	logprobs  bool

	cache   *KVCache
	sampler *sample.Sampler
	dec     *tokenizer.Decoder
	stop    stopper
	logits  []float32
	events  chan<- event
}

func (e *Engine) newSequence(ctx context.Context, index int, prompt []int32, maxTokens int, req inference.TextRequest, events chan<- event) *sequence {
	s := &sequence{ctx: ctx, index: index, prompt: prompt, maxTokens: maxTokens,
		logprobs: req.Logprobs, topLogp: req.TopLogprobs,
		sampler: sample.New(e.samplerParams(req.Sampling, index)),
		dec:     e.m.Tokenizer.NewDecoder(), stop: stopper{stops: req.Sampling.Stop}, events: events}
	for _, t := range prompt {
		s.sampler.Accept(t)
	}
	return s
}

// send delivers an event; the channel has room for every event a sequence can make.
func (s *sequence) send(ev event) {
	ev.index = s.index
	s.events <- ev
}

// loop runs the forward passes until Close. Each iteration takes in new sequences (up to the
// configured number running), builds one batch from every running sequence — a chunk of the
// prompt for those still reading it, the last sampled token for the others — runs it, and
// samples the next token of each sequence whose prompt is complete.
func (e *Engine) loop() {
	defer close(e.done)
	var running, waiting []*sequence
	steps := make([]Step, 0, e.cfg.Sequences)
	stepSeq := make([]*sequence, 0, e.cfg.Sequences)
	for {
		if len(running) == 0 && len(waiting) == 0 {
			select {
			case seqs := <-e.submit:
				waiting = append(waiting, seqs...)
			case <-e.quit:
				return
			}
		}
		// Take whatever else has arrived, without waiting.
	drain:
		for {
			select {
			case seqs := <-e.submit:
				waiting = append(waiting, seqs...)
			case <-e.quit:
				for _, s := range append(running, waiting...) {
					s.send(event{err: ErrClosed, finish: "error"})
				}
				return
			default:
				break drain
			}
		}
		for len(running) < e.cfg.Sequences && len(waiting) > 0 {
			s := waiting[0]
			waiting = waiting[1:]
			s.cache = e.m.NewKVCache(e.ctx)
			s.logits = make([]float32, e.m.Params.Vocab)
			running = append(running, s)
		}
		// Drop the sequences whose request went away.
		live := running[:0]
		for _, s := range running {
			if s.ctx.Err() == nil {
				live = append(live, s)
			}
		}
		running = live
		waiting = dropCanceled(waiting)
		if len(running) == 0 {
			continue
		}

		steps, stepSeq = steps[:0], stepSeq[:0]
		budget := e.cfg.BatchTokens
		for _, s := range running {
			if s.fed == len(s.prompt) {
				steps = append(steps, Step{Cache: s.cache, Tokens: []int32{s.next}, Logits: s.logits})
				stepSeq = append(stepSeq, s)
				budget--
			}
		}
		for _, s := range running {
			if s.fed < len(s.prompt) && budget > 0 {
				n := min(len(s.prompt)-s.fed, budget)
				st := Step{Cache: s.cache, Tokens: s.prompt[s.fed : s.fed+n]}
				if s.fed+n == len(s.prompt) {
					st.Logits = s.logits
				}
				steps = append(steps, st)
				stepSeq = append(stepSeq, s)
				budget -= n
			}
		}
		if err := e.runner.Forward(steps); err != nil {
			// Only a bug gets here: requests are checked before they are queued.
			for _, s := range running {
				s.send(event{err: fmt.Errorf("forward pass: %w", err), finish: "error"})
			}
			running = running[:0]
			continue
		}
		for i, st := range steps {
			s := stepSeq[i]
			if s.fed < len(s.prompt) {
				s.fed += len(st.Tokens)
			}
			if st.Logits != nil {
				e.advance(s)
			}
		}
		live = running[:0]
		for _, s := range running {
			if !s.finished() {
				live = append(live, s)
			}
		}
		running = live
	}
}

func dropCanceled(seqs []*sequence) []*sequence {
	out := seqs[:0]
	for _, s := range seqs {
		if s.ctx.Err() == nil {
			out = append(out, s)
		}
	}
	return out
}

// finished reports whether the sequence has ended (advance set its end).
func (s *sequence) finished() bool { return s.maxTokens < 0 }

// advance samples the sequence's next token from its logits and hands the text on, ending the
// sequence at an end-of-generation token, a stop string, max tokens or a full context.
func (e *Engine) advance(s *sequence) {
	tok := s.sampler.Sample(s.logits)
	s.sampler.Accept(tok)
	s.generated++
	ev := event{}
	if s.logprobs {
		ev.logprob = e.tokenLogprob(s, tok)
	}
	finish, stopped := "", false
	if e.m.Tokenizer.IsEOG(tok) {
		finish = openai.FinishStop
	} else {
		// The decoder holds back the bytes of a character split across tokens, but gives up on
		// bytes that can never form one (a random model makes them): those become U+FFFD, so
		// every delta is valid UTF-8.
		ev.text, stopped = s.stop.push(strings.ToValidUTF8(s.dec.Push(tok), "\uFFFD"))
		switch {
		case stopped:
			finish = openai.FinishStop
		case s.generated >= s.maxTokens || s.cache.Len()+1 > s.cache.ctx:
			finish = openai.FinishLength
		}
	}
	if finish == "" {
		s.next = tok
		if ev.text != "" || ev.logprob != nil {
			s.send(ev)
		}
		return
	}
	if !stopped {
		// What the decoder or the stop check held back belongs to the answer: an incomplete
		// character (as U+FFFD, so deltas stay valid UTF-8) or the start of a stop string
		// that never completed.
		rest, _ := s.stop.push(strings.ToValidUTF8(s.dec.Flush(), "\uFFFD"))
		ev.text += rest + s.stop.flush()
	}
	ev.finish, ev.tokens = finish, s.generated
	s.maxTokens = -1
	s.send(ev)
}

// tokenLogprob describes the token chosen and the most likely alternatives, with log
// probabilities from a plain softmax of the logits (temperature 1, nothing cut).
func (e *Engine) tokenLogprob(s *sequence, tok int32) *openai.TokenLogprob {
	lp, top := sample.Logprobs(s.logits, tok, s.topLogp)
	piece := e.m.Tokenizer.Piece(tok, false)
	out := &openai.TokenLogprob{Token: piece, Logprob: lp, Bytes: byteInts(piece), TopLogprobs: []openai.TopLogprob{}}
	for _, t := range top {
		p := e.m.Tokenizer.Piece(t.ID, false)
		out.TopLogprobs = append(out.TopLogprobs, openai.TopLogprob{Token: p, Logprob: t.Logprob, Bytes: byteInts(p)})
	}
	return out
}

func byteInts(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
