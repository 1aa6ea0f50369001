package sample

import (
	"math"
	"testing"
)

func TestGreedy(t *testing.T) {
	s := New(Params{})
	if got := s.Sample([]float32{0.1, 3, -2, 2.9}); got != 1 {
		t.Errorf("greedy = %d, want 1", got)
	}
}

func TestSeedReproducible(t *testing.T) {
	logits := []float32{1, 1.2, 0.8, 1.1, 0.9, 1.05}
	run := func(seed uint64) []int32 {
		s := New(Params{Temperature: 1, Seed: seed})
		var out []int32
		for range 50 {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if !equal(a, b) {
		t.Errorf("same seed gave %v and %v", a, b)
	}
	if equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same 50 tokens %v", a)
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDistribution draws many tokens at temperature 1 and checks the frequencies follow the
// softmax, and that temperature, top-k, top-p and min-p cut what they should.
func TestDistribution(t *testing.T) {
	logits := []float32{2, 1, 0, -1, -3}
	probs := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		probs[i] = math.Exp(float64(l))
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	// probs ≈ 0.6364, 0.2341, 0.0861, 0.0317, 0.0043
	tests := []struct {
		name string
		p    Params
		want []float64
	}{
		{"plain", Params{Temperature: 1}, probs},
		{"top-k 2", Params{Temperature: 1, TopK: 2}, renorm(probs[:2], 5)},
		{"top-p 0.8", Params{Temperature: 1, TopP: 0.8}, renorm(probs[:2], 5)},
		{"top-p 0.9", Params{Temperature: 1, TopP: 0.9}, renorm(probs[:3], 5)},
		{"min-p 0.1", Params{Temperature: 1, MinP: 0.1}, renorm(probs[:3], 5)},
		{"temperature 0.5", Params{Temperature: 0.5}, tempered(logits, 0.5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Seed = 1
			s := New(tt.p)
			const n = 40000
			counts := make([]float64, len(logits))
			for range n {
				counts[s.Sample(logits)]++
			}
			for i := range counts {
				got := counts[i] / n
				if math.Abs(got-tt.want[i]) > 0.01 {
					t.Errorf("p(%d) = %.4f, want %.4f", i, got, tt.want[i])
				}
			}
		})
	}
}

func renorm(p []float64, n int) []float64 {
	out := make([]float64, n)
	var sum float64
	for _, x := range p {
		sum += x
	}
	for i, x := range p {
		out[i] = x / sum
	}
	return out
}

func tempered(logits []float32, temp float64) []float64 {
	out := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		out[i] = math.Exp(float64(l) / temp)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func TestPenalties(t *testing.T) {
	tests := []struct {
		name   string
		p      Params
		seen   []int32
		logits []float32
		want   []float32
	}{
		{"repeat", Params{RepeatPenalty: 2}, []int32{0, 1}, []float32{4, -4, 1}, []float32{2, -8, 1}},
		{"frequency", Params{FrequencyPenalty: 0.5}, []int32{0, 0, 2}, []float32{4, 3, 1}, []float32{3, 3, 0.5}},
		{"presence", Params{PresencePenalty: 1.5}, []int32{0, 0, 2}, []float32{4, 3, 1}, []float32{2.5, 3, -0.5}},
		{"window", Params{RepeatPenalty: 2, PenaltyLastN: 1}, []int32{0, 1}, []float32{4, 4, 1}, []float32{4, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.p)
			for _, id := range tt.seen {
				s.Accept(id)
			}
			got := append([]float32(nil), tt.logits...)
			s.penalize(got)
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Errorf("logits = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
	// With a penalty, greedy moves off a repeated token.
	s := New(Params{RepeatPenalty: 3})
	s.Accept(0)
	if got := s.Sample([]float32{3, 2}); got != 1 {
		t.Errorf("greedy with penalty = %d, want 1", got)
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 3, 2}
	lp, top := Logprobs(logits, 2, 2)
	lse := math.Log(math.Exp(1) + math.Exp(3) + math.Exp(2))
	if math.Abs(lp-(2-lse)) > 1e-9 {
		t.Errorf("logprob = %v, want %v", lp, 2-lse)
	}
	if len(top) != 2 || top[0].ID != 1 || top[1].ID != 2 || math.Abs(top[0].Logprob-(3-lse)) > 1e-9 {
		t.Errorf("top = %+v", top)
	}
}
