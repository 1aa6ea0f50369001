package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
)

// GenerateText streams words chosen by a generator seeded from the prompt, the request's seed
// and the choice index: the same request always gets the same text. It waits TimeToFirstToken
// before the first token and InterTokenLatency between tokens (one token of every choice per
// step), generates min(max_tokens, Tokens) tokens, and honours stop sequences.
func (e *Engine) GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error) {
	n := max(req.N, 1)
	prompt := promptText(req)
	var seed string
	if req.Sampling.Seed != nil {
		seed = fmt.Sprint(*req.Sampling.Seed)
	}
	limit, reason := e.cfg.Tokens, openai.FinishStop
	if req.MaxTokens > 0 && req.MaxTokens < limit {
		limit, reason = req.MaxTokens, openai.FinishLength
	}

	type choice struct {
		gen      *choiceGen
		text     strings.Builder
		logprobs []openai.TokenLogprob
		tokens   int
		finish   string
	}
	choices := make([]*choice, n)
	for i := range choices {
		choices[i] = &choice{gen: &choiceGen{r: newRand(hash64(e.cfg.Seed, prompt, seed, fmt.Sprint(i)))}}
	}
	if err := wait(ctx, e.cfg.TimeToFirstToken); err != nil {
		return inference.TextResult{}, err
	}
	for step := range limit {
		if step > 0 {
			if err := wait(ctx, e.cfg.InterTokenLatency); err != nil {
				return inference.TextResult{}, err
			}
		}
		live := 0
		for i, c := range choices {
			if c.finish != "" {
				continue
			}
			tok := c.gen.next(step)
			c.tokens++
			text := c.text.String() + tok
			if cut, ok := stopAt(text, req.Sampling.Stop); ok {
				// Emit only what precedes the stop sequence. A stop sequence that began in
				// text already streamed cannot be taken back; real servers hold text back
				// for this, the simulation does not need to.
				tok = cut[min(c.text.Len(), len(cut)):]
				c.finish = openai.FinishStop
			}
			c.text.WriteString(tok)
			d := inference.TextDelta{Index: i, Text: tok}
			if req.Logprobs {
				lp := tokenLogprob(c.gen.r, tok, req.TopLogprobs)
				c.logprobs = append(c.logprobs, lp)
				d.Logprobs = []openai.TokenLogprob{lp}
			}
			if tok != "" || d.Logprobs != nil {
				if err := emit(d); err != nil {
					return inference.TextResult{}, err
				}
			}
			if c.finish == "" {
				live++
			}
		}
		if live == 0 {
			break
		}
	}
	res := inference.TextResult{Usage: openai.Usage{PromptTokens: countTokens(prompt)}}
	for i, c := range choices {
		if c.finish == "" {
			c.finish = reason
		}
		res.Choices = append(res.Choices, inference.TextChoice{Index: i, Text: c.text.String(), FinishReason: c.finish, Logprobs: c.logprobs})
		res.Usage.CompletionTokens += c.tokens
	}
	res.Usage.TotalTokens = res.Usage.PromptTokens + res.Usage.CompletionTokens
	return res, nil
}

// choiceGen generates one choice's words.
type choiceGen struct {
	r *rand.Rand
}

func (g *choiceGen) next(step int) string {
	w := vocabulary[g.r.IntN(len(vocabulary))]
	if step == 0 {
		return w
	}
	return " " + w
}

// stopAt cuts text before the first stop sequence in it.
func stopAt(text string, stops []string) (string, bool) {
	cut := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text, false
	}
	return text[:cut], true
}
