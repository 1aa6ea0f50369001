package clip

import (
	"math"
	"testing"
)

func TestParseEmphasis(t *testing.T) {
	type seg = Segment
	f := func(v float64) float32 { return float32(v) }
	tests := []struct {
		in   string
		want []Segment
	}{
		// The examples of AUTOMATIC1111's parse_prompt_attention.
		{"normal text", []seg{{Text: "normal text", Weight: 1}}},
		{"an (important) word", []seg{{Text: "an ", Weight: 1}, {Text: "important", Weight: 1.1}, {Text: " word", Weight: 1}}},
		{"(unbalanced", []seg{{Text: "unbalanced", Weight: 1.1}}},
		{`\(literal\]`, []seg{{Text: "(literal]", Weight: 1}}},
		{"(unnecessary)(parens)", []seg{{Text: "unnecessaryparens", Weight: 1.1}}},
		{"a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", []seg{
			{Text: "a ", Weight: 1},
			{Text: "house", Weight: f(1.573)},
			{Text: " ", Weight: 1.1},
			{Text: "on", Weight: 1},
			{Text: " a ", Weight: 1.1},
			{Text: "hill", Weight: 0.55},
			{Text: ", sun, ", Weight: 1.1},
			{Text: "sky", Weight: f(1.4641)},
			{Text: ".", Weight: 1.1},
		}},
		{"", []seg{{Text: "", Weight: 1}}},
		{"[dim]", []seg{{Text: "dim", Weight: 1 / 1.1}}},
		{"a) b]", []seg{{Text: "a) b]", Weight: 1}}}, // stray closers are text
		{"x:1.2) y", []seg{{Text: "x:1.2) y", Weight: 1}}},
		{"ratio 16:9", []seg{{Text: "ratio 16:9", Weight: 1}}},
		{"( spaced : 1.5 )", []seg{{Text: " spaced ", Weight: 1.5}}},
		{`a \\ b \ c`, []seg{{Text: `a \ b  c`, Weight: 1}}}, // a lone backslash vanishes
		{"cat BREAK dog", []seg{{Text: "cat", Weight: 1}, {Text: "BREAK", Weight: -1, Break: true}, {Text: "dog", Weight: 1}}},
		{"(cat BREAK dog)", []seg{{Text: "cat", Weight: 1.1}, {Text: "BREAK", Weight: -1, Break: true}, {Text: "dog", Weight: 1.1}}},
		{"BREAKFAST", []seg{{Text: "BREAKFAST", Weight: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := ParseEmphasis(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("ParseEmphasis(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Text != w.Text || g.Break != w.Break || math.Abs(float64(g.Weight-w.Weight)) > 1e-5 {
					t.Errorf("segment %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// FuzzParseEmphasis: any prompt parses and tokenizes without panicking into
// whole chunks of valid ids, and weights stay positive unless the prompt
// wrote a non-positive one.
func FuzzParseEmphasis(f *testing.F) {
	for _, s := range []string{"a (b:1.2) [c] \\( BREAK d", "((((", "]]:)", "(x:-1)"} {
		f.Add(s)
	}
	tok, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, seg := range ParseEmphasis(s) {
			if seg.Break && (seg.Weight != -1 || seg.Text != "BREAK") || !seg.Break && seg.Weight <= 0 && !negativeWeight(s) {
				t.Fatalf("segment %+v", seg)
			}
		}
		got := tok.Tokenize(s, PadSD1)
		if len(got.IDs) == 0 || len(got.IDs)%Context != 0 || len(got.IDs) != len(got.Weights) {
			t.Fatalf("Tokenize(%q): %d ids, %d weights", s, len(got.IDs), len(got.Weights))
		}
		for _, id := range got.IDs {
			if id < 0 || id >= VocabSize {
				t.Fatalf("Tokenize(%q): id %d", s, id)
			}
		}
	})
}

func negativeWeight(s string) bool {
	for i := range s {
		if s[i] == ':' {
			if w, _, ok := weightClose(s[i:]); ok && w <= 0 {
				return true
			}
		}
	}
	return false
}
