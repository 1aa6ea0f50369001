package clip

import (
	"reflect"
	"slices"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
)

func tokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVocabulary(t *testing.T) {
	tok := tokenizer(t)
	// The layout: 256 byte symbols ('!' first, printable ASCII in order),
	// the same with </w>, one token per merge (the first is "i n" → "in"),
	// then the two specials.
	tests := []struct {
		id   int
		want string
	}{
		{0, "!"}, {64, "a"}, {256, "!</w>"}, {320, "a</w>"}, {512, "in"}, {513, "th"},
		{BOS, "<|startoftext|>"}, {EOS, "<|endoftext|>"}, {VocabSize, ""},
	}
	for _, tt := range tests {
		if got := tok.Token(tt.id); got != tt.want {
			t.Errorf("Token(%d) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := len(tok.words); got != VocabSize {
		t.Errorf("vocabulary has %d tokens, want %d", got, VocabSize)
	}
}

func TestEncode(t *testing.T) {
	tok := tokenizer(t)
	tests := []struct {
		text string
		want []int
	}{
		{"", nil},
		{"a", []int{320}},
		{"A", []int{320}}, // lowercased
		{"!", []int{256}},
		{"12", []int{272, 273}}, // digits one at a time
		{"a red cat", []int{320, 736, 2368}},
		{"  A \n\t RED   cat  ", []int{320, 736, 2368}}, // whitespace cleaned
		{"a<|endoftext|>a", []int{320, EOS, 320}},
		{"<|startoftext|>", []int{BOS}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := tok.Encode(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

// TestSplitEquivalences checks the pre-split against the pattern's rules
// without depending on particular merges: text that the pattern splits the
// same way encodes the same.
func TestSplitEquivalences(t *testing.T) {
	tok := tokenizer(t)
	tests := []struct{ a, b string }{
		{"cat's", "cat 's"},      // contraction split off
		{"it'll", "it 'll"},      // longer contraction
		{"cat,dog", "cat , dog"}, // punctuation is its own word
		{"a1b", "a 1 b"},         // a number breaks a word
		{"'x", "' x"},            // apostrophe without contraction is punctuation
		{"?!", "?!"},
		{"héllo wörld", "HÉLLO WÖRLD"}, // Unicode letters and lowercasing
	}
	for _, tt := range tests {
		if got, want := tok.Encode(tt.a), tok.Encode(tt.b); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, Encode(%q) = %v; want equal", tt.a, got, tt.b, want)
		}
	}
	if a, b := tok.Encode("?!"), tok.Encode("? !"); slices.Equal(a, b) {
		t.Errorf("a punctuation run should be one word: %v == %v", a, b)
	}
}

// TestOracleTokens checks Tokenize against the token ids that
// stable-diffusion.cpp fed its text encoders in the golden cases.
func TestOracleTokens(t *testing.T) {
	tok := tokenizer(t)
	for _, tt := range []struct {
		oracle string
		pad    int
	}{{sdtest.SD1, PadSD1}, {sdtest.SD2, PadSD2}} {
		o, err := sdtest.Load(tt.oracle)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range o.Cases {
			for _, p := range []struct {
				text string
				want []int
			}{{c.Prompt, c.PromptIDs}, {c.Negative, c.NegativeIDs}} {
				got := tok.Tokenize(p.text, tt.pad)
				if !slices.Equal(got.IDs, p.want) {
					t.Errorf("%s: Tokenize(%q) = %v, want %v", tt.oracle, p.text, got.IDs, p.want)
				}
			}
		}
	}
}

func TestTokenizeChunks(t *testing.T) {
	tok := tokenizer(t)
	// 80 single-token words: a chunk of 75 and one of 5.
	prompt := ""
	for range 80 {
		prompt += "a "
	}
	got := tok.Tokenize(prompt, PadSD1)
	if got.Chunks() != 2 || len(got.Weights) != len(got.IDs) {
		t.Fatalf("%d ids, %d weights; want 2 chunks of 77", len(got.IDs), len(got.Weights))
	}
	c0, c1 := got.IDs[:77], got.IDs[77:]
	if c0[0] != BOS || c0[1] != 320 || c0[75] != 320 || c0[76] != EOS {
		t.Errorf("chunk 0 = %v", c0)
	}
	if c1[0] != BOS || c1[5] != 320 || c1[6] != EOS || c1[7] != PadSD1 || c1[76] != PadSD1 {
		t.Errorf("chunk 1 = %v", c1)
	}
	// Exactly 75 tokens fit one chunk.
	if n := tok.Tokenize(prompt[:150], PadSD2).Chunks(); n != 1 {
		t.Errorf("75 tokens: %d chunks, want 1", n)
	}
	// BREAK ends the chunk; padding inside it is EOS even for SD 2.x.
	b := tok.Tokenize("a red BREAK cat", PadSD2)
	if b.Chunks() != 2 || b.IDs[3] != EOS || b.IDs[76] != EOS || b.IDs[77] != BOS || b.IDs[78] != 2368 || b.IDs[79] != EOS || b.IDs[80] != PadSD2 {
		t.Errorf("BREAK: %v", b.IDs)
	}
}

func TestTokenizeWeights(t *testing.T) {
	tok := tokenizer(t)
	got := tok.Tokenize("a (red:1.5) [cat]", PadSD1)
	want := []float32{1, 1, 1.5, squareMultiplier, 1, 1}
	if !reflect.DeepEqual(got.Weights[:6], want) {
		t.Errorf("weights = %v, want %v", got.Weights[:6], want)
	}
	if !slices.Equal(got.IDs[:5], []int{BOS, 320, 736, 2368, EOS}) {
		t.Errorf("ids = %v", got.IDs[:5])
	}
}
