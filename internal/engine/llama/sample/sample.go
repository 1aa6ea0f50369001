// Package sample picks the next token from a model's logits the way llama.cpp's default
// sampler chain does: repetition, frequency and presence penalties over the recent tokens,
// then top-k, top-p, min-p, temperature, and a draw from a seeded generator (or the most likely
// token when the temperature is 0). It also computes the log probabilities that the API
// reports.
package sample

import (
	"cmp"
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
)

// Params configure a Sampler. The zero value samples greedily with no penalties.
type Params struct {
	// Temperature divides the logits; 0 or less picks the most likely token (greedy).
	Temperature float64
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the most likely tokens whose probabilities add up to at least TopP; 0 or 1
	// keeps all.
	TopP float64
	// MinP keeps the tokens at least MinP times as likely as the most likely one; 0 keeps all.
	MinP float64
	// RepeatPenalty divides positive logits and multiplies negative ones of the tokens seen in
	// the last PenaltyLastN; 0 or 1 is off.
	RepeatPenalty float64
	// FrequencyPenalty is subtracted once per occurrence, PresencePenalty once per token seen.
	FrequencyPenalty float64
	PresencePenalty  float64
	// PenaltyLastN is how many recent tokens the penalties look at (llama.cpp's default: 64).
	PenaltyLastN int
	// Seed seeds the generator: the same seed, logits and parameters give the same tokens.
	Seed uint64
}

// Greedy reports whether p always picks the most likely token.
func (p Params) Greedy() bool { return p.Temperature <= 0 }

func (p Params) penalized() bool {
	return (p.RepeatPenalty != 0 && p.RepeatPenalty != 1) || p.FrequencyPenalty != 0 || p.PresencePenalty != 0
}

// Sampler picks tokens for one sequence. It is not safe for concurrent use.
type Sampler struct {
	p       Params
	rng     *rand.Rand
	recent  []int32 // the last PenaltyLastN accepted tokens, oldest first
	counts  map[int32]int
	cand    []candidate
	scratch []float32
}

type candidate struct {
	id    int32
	logit float32
	p     float64
}

// New returns a Sampler with parameters p.
func New(p Params) *Sampler {
	if p.PenaltyLastN <= 0 {
		p.PenaltyLastN = 64
	}
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9E3779B97F4A7C15)), counts: map[int32]int{}}
}

// Accept records a token of the sequence (prompt or generated) for the penalties.
func (s *Sampler) Accept(id int32) {
	if !s.p.penalized() {
		return
	}
	if len(s.recent) == s.p.PenaltyLastN {
		old := s.recent[0]
		s.recent = s.recent[1:]
		if s.counts[old]--; s.counts[old] == 0 {
			delete(s.counts, old)
		}
	}
	s.recent = append(s.recent, id)
	s.counts[id]++
}

// Sample returns the next token for logits, which it does not modify.
func (s *Sampler) Sample(logits []float32) int32 {
	if s.p.penalized() && len(s.counts) > 0 {
		s.scratch = append(s.scratch[:0], logits...)
		logits = s.scratch
		s.penalize(logits)
	}
	if s.p.Greedy() {
		return argmax(logits)
	}
	c := s.topK(logits)
	softmax(c)
	c = topP(c, s.p.TopP)
	c = minP(c, s.p.MinP)
	// Temperature last, as in llama.cpp's chain: the filters above see the untempered
	// distribution.
	for i := range c {
		c[i].logit = float32(float64(c[i].logit) / s.p.Temperature)
	}
	softmax(c)
	r := s.rng.Float64()
	for _, x := range c {
		r -= x.p
		if r < 0 {
			return x.id
		}
	}
	return c[len(c)-1].id
}

// penalize applies llama.cpp's llama_sampler_penalties to logits.
func (s *Sampler) penalize(logits []float32) {
	rp := float32(s.p.RepeatPenalty)
	if rp == 0 {
		rp = 1
	}
	for id, n := range s.counts {
		if id < 0 || int(id) >= len(logits) {
			continue
		}
		l := logits[id]
		if l <= 0 {
			l *= rp
		} else {
			l /= rp
		}
		l -= float32(n)*float32(s.p.FrequencyPenalty) + float32(s.p.PresencePenalty)
		logits[id] = l
	}
}

// topK returns the K most likely candidates (all with K 0), most likely first.
func (s *Sampler) topK(logits []float32) []candidate {
	k := s.p.TopK
	if k <= 0 || k > len(logits) {
		k = len(logits)
	}
	c := s.cand[:0]
	if k == len(logits) {
		for i, l := range logits {
			c = append(c, candidate{id: int32(i), logit: l})
		}
	} else {
		// A min-heap of the k best so far: O(V log k) rather than sorting the vocabulary.
		h := minHeap(c)
		for i, l := range logits {
			if len(h) < k {
				heap.Push(&h, candidate{id: int32(i), logit: l})
			} else if l > h[0].logit {
				h[0] = candidate{id: int32(i), logit: l}
				heap.Fix(&h, 0)
			}
		}
		c = []candidate(h)
	}
	slices.SortStableFunc(c, func(a, b candidate) int {
		if a.logit != b.logit {
			return cmp.Compare(b.logit, a.logit)
		}
		return cmp.Compare(a.id, b.id)
	})
	s.cand = c
	return c
}

// topP keeps the shortest prefix of c (sorted, with probabilities) that reaches p.
func topP(c []candidate, p float64) []candidate {
	if p <= 0 || p >= 1 {
		return c
	}
	var sum float64
	for i, x := range c {
		sum += x.p
		if sum >= p {
			return c[:i+1]
		}
	}
	return c
}

// minP keeps the candidates at least p times as likely as the first.
func minP(c []candidate, p float64) []candidate {
	if p <= 0 || len(c) == 0 {
		return c
	}
	limit := c[0].p * p
	for i, x := range c {
		if x.p < limit {
			return c[:max(i, 1)]
		}
	}
	return c
}

// softmax sets the probabilities of c from its logits.
func softmax(c []candidate) {
	m := math.Inf(-1)
	for _, x := range c {
		m = max(m, float64(x.logit))
	}
	var sum float64
	for i := range c {
		c[i].p = math.Exp(float64(c[i].logit) - m)
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
}

func argmax(logits []float32) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	return int32(best)
}

type minHeap []candidate

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i].logit < h[j].logit }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TokenProb is a token and its log probability.
type TokenProb struct {
	ID      int32
	Logprob float64
}

// Logprobs returns the log probability of token id under a plain softmax of logits
// (temperature 1, nothing cut), and the k most likely tokens with theirs, most likely first.
func Logprobs(logits []float32, id int32, k int) (float64, []TokenProb) {
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, float64(l))
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l) - m)
	}
	lse := m + math.Log(sum)
	var top []TokenProb
	if k > 0 {
		s := &Sampler{p: Params{TopK: k}}
		for _, c := range s.topK(logits) {
			top = append(top, TokenProb{ID: c.id, Logprob: float64(c.logit) - lse})
		}
	}
	var lp float64
	if id >= 0 && int(id) < len(logits) {
		lp = float64(logits[id]) - lse
	}
	return lp, top
}
