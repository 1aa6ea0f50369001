package tokenizer

import (
	"slices"
	"testing"
)

// bpeMerges spell "hello", " world", " 1" and a few pairs; '|' separates the two sides.
var bpeMerges = []string{
	"l|l", "h|e", "he|ll", "hell|o", " |w", "o|r", " w|or", " wor|l", " worl|d", " |1", "1|2",
}

var bpeSpecial = map[string]int32{
	"<|endoftext|>": TypeControl, "<|im_start|>": TypeControl, "<|im_end|>": TypeControl,
	"<think>": TypeUserDefined, "<a>": TypeControl, "<a><b>": TypeControl, "xyz": TypeNormal,
}

func TestBPEEncode(t *testing.T) {
	tok := mustNew(t, bpeVocab("qwen2", bpeMerges, bpeSpecial))
	tests := []struct {
		name string
		text string
		opts EncodeOptions
		want []string
	}{
		{"merges", "hello world", EncodeOptions{}, []string{"hello", "Ġworld"}},
		{"no space prefix", " hello", EncodeOptions{}, []string{"Ġ", "hello"}},
		{"qwen2 splits digits", "12", EncodeOptions{}, []string{"1", "2"}},
		{"digit after space", " 1", EncodeOptions{}, []string{"Ġ", "1"}},
		{"newlines", "hello\n\n", EncodeOptions{}, []string{"hello", "Ċ", "Ċ"}},
		{"emoji as bytes", "😀", EncodeOptions{}, []string{"ð", "Ł", "ĺ", "Ģ"}},
		{"multi-byte letters", "é", EncodeOptions{}, []string{"Ã", "©"}},
		{"invalid UTF-8 becomes U+FFFD", "\xff", EncodeOptions{}, []string{"ï", "¿", "½"}},
		{"merges apply only within a pre-token", "xyz", EncodeOptions{}, []string{"x", "y", "z"}},
		// Qwen2 splits "<|im_end|>" into "<|", "im", "_end", "|>"; with no merges
		// for them each comes out byte by byte.
		{"control text without ParseSpecial", "<|im_end|>", EncodeOptions{},
			[]string{"<", "|", "i", "m", "_", "e", "n", "d", "|", ">"}},
		{"ParseSpecial", "<|im_start|>hello<|im_end|>", EncodeOptions{ParseSpecial: true},
			[]string{"<|im_start|>", "hello", "<|im_end|>"}},
		{"user-defined tokens always split", "hello<think>world", EncodeOptions{},
			[]string{"hello", "<think>", "w", "or", "l", "d"}},
		{"longest special token first", "<a><b><a>", EncodeOptions{ParseSpecial: true},
			[]string{"<a><b>", "<a>"}},
		{"AddSpecial adds nothing when the flags are off", "hello", EncodeOptions{AddSpecial: true},
			[]string{"hello"}},
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

func TestBPEMergeOrder(t *testing.T) {
	tests := []struct {
		name   string
		merges []string
		text   string
		want   []string
	}{
		{"lowest rank first", []string{"b|c", "a|b"}, "abc", []string{"a", "bc"}},
		{"lowest rank first, reversed", []string{"a|b", "b|c"}, "abc", []string{"ab", "c"}},
		{"leftmost on ties", []string{"a|a"}, "aaaa", []string{"aa", "aa"}},
		{"a lower rank wins over a longer merge", []string{"a|a", "aa|a"}, "aaaa", []string{"aa", "aa"}},
		{"merges build on merges", []string{"a|a", "aa|aa"}, "aaaa", []string{"aaaa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mustNew(t, bpeVocab("gpt-2", tt.merges, nil))
			got := texts(tok, tok.Encode(tt.text, EncodeOptions{}))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestBPEIgnoreMerges(t *testing.T) {
	// Llama 3 takes a pre-token that is itself a token as it is, even where the merges
	// could not build it.
	tok := mustNew(t, bpeVocab("llama-bpe", bpeMerges, bpeSpecial))
	if got, want := texts(tok, tok.Encode("xyz", EncodeOptions{})), []string{"xyz"}; !slices.Equal(got, want) {
		t.Errorf("Encode(xyz) = %q, want %q", got, want)
	}
	if got, want := texts(tok, tok.Encode("1234", EncodeOptions{})), []string{"12", "3", "4"}; !slices.Equal(got, want) {
		t.Errorf("Encode(1234) = %q, want %q", got, want)
	}
}

func TestBPESpecialFlags(t *testing.T) {
	v := bpeVocab("llama-bpe", bpeMerges, bpeSpecial)
	v.BOS, _ = indexOf(v.Tokens, "<|im_start|>")
	v.EOS, _ = indexOf(v.Tokens, "<|endoftext|>")
	v.AddBOS, v.AddEOS = true, true
	tok := mustNew(t, v)
	tests := []struct {
		opts EncodeOptions
		want []string
	}{
		{EncodeOptions{}, []string{"hello"}},
		{EncodeOptions{AddSpecial: true}, []string{"<|im_start|>", "hello", "<|endoftext|>"}},
	}
	for _, tt := range tests {
		if got := texts(tok, tok.Encode("hello", tt.opts)); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(hello, %+v) = %q, want %q", tt.opts, got, tt.want)
		}
	}
	if got := tok.Encode("", EncodeOptions{AddSpecial: true}); len(got) != 2 {
		t.Errorf("Encode(\"\", AddSpecial) = %v, want BOS and EOS", got)
	}
}

func indexOf(s []string, x string) (int32, bool) {
	i := slices.Index(s, x)
	return int32(i), i >= 0
}
