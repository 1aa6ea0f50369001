package tokenizer

import (
	"slices"
	"testing"
)

// spmPieces is the piece list of most SPM tests. Scores decide the merge order.
var spmPieces = map[string]float32{
	"▁": -10, "▁▁": -0.7, "h": -20, "e": -20, "l": -20, "o": -20, "a": -20, "b": -20, "c": -20,
	"s": -20, "<": -20, ">": -20, "/": -20, "1": -20, "2": -20,
	"▁h": -1, "el": -2, "lo": -3, "▁hel": -4, "ll": -5, "▁hello": -6,
	"▁a": -1.5, "▁b": -1.6, "▁1": -1.7,
}

func TestSPMEncode(t *testing.T) {
	tok := mustNew(t, spmVocab(spmPieces, map[string]int32{"<tag>": TypeUserDefined}))
	tests := []struct {
		name string
		text string
		opts EncodeOptions
		want []string
	}{
		{"space prefix and score order", "hello", EncodeOptions{}, []string{"▁hello"}},
		{"no space inside the fragment", "ahello", EncodeOptions{}, []string{"▁a", "h", "el", "lo"}},
		{"BOS", "hello", EncodeOptions{AddSpecial: true}, []string{"<s>", "▁hello"}},
		{"empty", "", EncodeOptions{}, nil},
		{"empty with BOS", "", EncodeOptions{AddSpecial: true}, []string{"<s>"}},
		{"spaces", " a", EncodeOptions{}, []string{"▁▁", "a"}},
		{"words", "a b", EncodeOptions{}, []string{"▁a", "▁b"}},
		{"digits", "12", EncodeOptions{}, []string{"▁1", "2"}},
		{"byte fallback", "a€", EncodeOptions{}, []string{"▁a", "<0xE2>", "<0x82>", "<0xAC>"}},
		{"emoji", "😀", EncodeOptions{}, []string{"▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}},
		{"newline", "a\nb", EncodeOptions{}, []string{"▁a", "<0x0A>", "b"}},
		{"invalid UTF-8 as bytes", "a\xff", EncodeOptions{}, []string{"▁a", "<0xFF>"}},
		{"control text is text without ParseSpecial", "<s>hello</s>", EncodeOptions{},
			[]string{"▁", "<", "s", ">", "h", "el", "lo", "<", "/", "s", ">"}},
		// llama.cpp puts a space before every text fragment that follows a special token.
		{"ParseSpecial", "<s>hello</s>", EncodeOptions{ParseSpecial: true},
			[]string{"<s>", "▁hello", "</s>"}},
		{"user-defined tokens always split", "a<tag>b", EncodeOptions{}, []string{"▁a", "<tag>", "▁b"}},
		{"unknown token text", "<unk>", EncodeOptions{ParseSpecial: true}, []string{"<unk>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := texts(tok, tok.Encode(tt.text, tt.opts))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSPMMergeOrder(t *testing.T) {
	tests := []struct {
		name   string
		pieces map[string]float32
		text   string
		want   []string
	}{
		{"higher score first", map[string]float32{"a": -9, "b": -9, "c": -9, "ab": -2, "bc": -1},
			"abc", []string{"a", "bc"}},
		{"higher score first, reversed", map[string]float32{"a": -9, "b": -9, "c": -9, "ab": -1, "bc": -2},
			"abc", []string{"ab", "c"}},
		{"leftmost on ties", map[string]float32{"a": -9, "aa": -1}, "aaaa", []string{"aa", "aa"}},
		{"a merge creates a better pair", map[string]float32{"a": -9, "aa": -1, "aaa": -0.5},
			"aaaa", []string{"aaa", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := spmVocab(tt.pieces, nil)
			v.AddSpacePrefix = false
			tok := mustNew(t, v)
			got := texts(tok, tok.Encode(tt.text, EncodeOptions{}))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSPMEncodeEOSAndUnknown(t *testing.T) {
	v := spmVocab(spmPieces, nil)
	v.AddEOS = true
	tok := mustNew(t, v)
	if got, want := texts(tok, tok.Encode("a", EncodeOptions{AddSpecial: true})), []string{"<s>", "▁a", "</s>"}; !slices.Equal(got, want) {
		t.Errorf("Encode with BOS and EOS = %q, want %q", got, want)
	}

	// Without byte tokens a character outside the vocabulary becomes <unk>, one per
	// byte (llama.cpp would fail here).
	v = Vocab{Model: "llama", Tokens: []string{"<unk>", "▁", "a"}, Types: []int32{TypeUnknown, TypeNormal, TypeNormal},
		BOS: -1, EOS: -1, EOT: -1, UNK: 0, PAD: -1, AddSpacePrefix: true}
	tok = mustNew(t, v)
	if got, want := texts(tok, tok.Encode("aé", EncodeOptions{})), []string{"▁", "a", "<unk>", "<unk>"}; !slices.Equal(got, want) {
		t.Errorf("Encode without byte tokens = %q, want %q", got, want)
	}
}
