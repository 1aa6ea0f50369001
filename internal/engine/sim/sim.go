// Package sim is the simulated engine, for load tests and for tests of everything around an
// engine: it streams deterministic words with a set time to first token and inter-token latency,
// computes embeddings from a hash of the input, and draws images of the requested size after a
// set delay, reporting each step. It runs no model. It is never a default: a worker uses it only
// when its config names engine "sim".
package sim

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
)

// Config sets the simulated engine's timing and sizes. Zero values take the defaults.
type Config struct {
	// TimeToFirstToken is the wait before a text job's first token. Default 0.
	TimeToFirstToken time.Duration
	// InterTokenLatency is the wait between tokens. Default 0.
	InterTokenLatency time.Duration
	// Tokens is how many tokens a text job generates when its max_tokens asks for more (or for
	// nothing); it then finishes with "stop". Default 16.
	Tokens int
	// EmbeddingDim is the length of every embedding. Default 384.
	EmbeddingDim int
	// ImageStepTime is the time each image step takes; an image request without steps takes
	// ImageSteps of them. Defaults 0 and 4.
	ImageStepTime time.Duration
	ImageSteps    int
	// Seed varies every output; the same seed and request give the same output.
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.Tokens <= 0 {
		c.Tokens = 16
	}
	if c.EmbeddingDim <= 0 {
		c.EmbeddingDim = 384
	}
	if c.ImageSteps <= 0 {
		c.ImageSteps = 4
	}
	return c
}

// Engine is the simulated engine. It is safe for concurrent use and needs no closing.
type Engine struct {
	cfg Config
}

// New returns a simulated engine.
func New(cfg Config) *Engine {
	return &Engine{cfg: cfg.withDefaults()}
}

// Health always reports the engine healthy.
func (e *Engine) Health(ctx context.Context) error { return nil }

// vocabulary is what the simulated text is made of: common English words, so that generated
// text tokenizes and displays like text.
var vocabulary = strings.Fields(`the of and to in is was it for on with as at by from that this be are
have not but had his they you were her she all there can an one which their said if do will each
about how up out them then many some so these would other into has more two like him see time
could no make than first been its who now people my made over did down only way find use may water
long little very after words called just where most know get through back much before go good new
write our used me man too any day same right look think also around another came come work three
word must because does part even place well such here take why things help put years different
away again off went old number great tell men say small every found still between name should home
big give air line set own under read last never us left end along while might next sound below saw
something thought both few those always looked show large often together asked house world going
want school important until form food keep children feet land side without boy once animals life
enough took sometimes four head above kind began almost live page got earth need far hand high year
mother light parts country father let night following picture being study second eyes soon times
story boys since white days ever paper hard near sentence better best across during today others
however sure means knew its try told young miles sun ways thing whole hear example heard several
change answer room sea against top turned learn point city play toward five using himself usually`)

// hash64 mixes strings into a seed.
func hash64(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// promptText is the text a request generates from, and what its prompt tokens are counted on.
func promptText(req inference.TextRequest) string {
	if !req.Chat() {
		return req.Prompt
	}
	var sb strings.Builder
	for _, m := range req.Messages {
		sb.WriteString(m.Role)
		sb.WriteString(": ")
		sb.WriteString(string(m.Content))
		sb.WriteString("\n")
	}
	return sb.String()
}

// countTokens approximates a token count: one per word, at least one per non-empty text.
func countTokens(s string) int {
	n := len(strings.Fields(s))
	if n == 0 && s != "" {
		n = 1
	}
	return n
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// logprob gives a token a plausible, deterministic log probability.
func logprob(r *rand.Rand) float64 { return -r.Float64() * 2 }

func tokenLogprob(r *rand.Rand, tok string, top int) openai.TokenLogprob {
	lp := openai.TokenLogprob{Token: tok, Logprob: logprob(r), Bytes: bytesOf(tok), TopLogprobs: []openai.TopLogprob{}}
	for i := range top {
		alt := vocabulary[r.IntN(len(vocabulary))]
		if i == 0 {
			alt = tok
		}
		lp.TopLogprobs = append(lp.TopLogprobs, openai.TopLogprob{Token: alt, Logprob: lp.Logprob - float64(i), Bytes: bytesOf(alt)})
	}
	return lp
}

func bytesOf(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}
