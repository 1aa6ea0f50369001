package tokenizer

import (
	"slices"
	"testing"
)

func TestPreTokenize(t *testing.T) {
	tests := []struct {
		pre, text string
		want      []string
	}{
		// Llama 3: case-insensitive contractions, digits in threes, one leading
		// non-letter glued to a word, newlines kept with what precedes them.
		{"llama-bpe", "Hello world", []string{"Hello", " world"}},
		{"llama-bpe", "I'M you're", []string{"I", "'M", " you", "'re"}},
		{"llama-bpe", "don't", []string{"don", "'t"}},
		{"llama-bpe", "12345", []string{"123", "45"}},
		{"llama-bpe", "abc123def", []string{"abc", "123", "def"}},
		{"llama-bpe", "a  b", []string{"a", " ", " b"}},
		{"llama-bpe", "a \n b", []string{"a", " \n", " b"}},
		{"llama-bpe", "x!!\n\ny", []string{"x", "!!\n\n", "y"}},
		{"llama-bpe", "a\r\n\r\nb", []string{"a", "\r\n\r\n", "b"}},
		{"llama-bpe", "hi  ", []string{"hi", "  "}},
		{"llama-bpe", "  hi", []string{" ", " hi"}},
		{"llama-bpe", "\t\tx", []string{"\t", "\tx"}},
		{"llama-bpe", "$100", []string{"$", "100"}},
		{"llama-bpe", " ?!", []string{" ?!"}},
		{"llama-bpe", "日本語123", []string{"日本語", "123"}},
		{"llama-bpe", "x ", []string{"x", " "}},

		// Qwen2: single digits, otherwise as Llama 3.
		{"qwen2", "12345", []string{"1", "2", "3", "4", "5"}},
		{"qwen2", "abc123", []string{"abc", "1", "2", "3"}},
		{"qwen2", "I'M", []string{"I", "'M"}},
		{"qwen2", "a  b", []string{"a", " ", " b"}},
		{"qwen2", "\t\tx", []string{"\t", "\tx"}},
		{"qwen2", "x!!\n\ny", []string{"x", "!!\n\n", "y"}},
		{"qwen2", "a \n b", []string{"a", " \n", " b"}},
		{"qwen2", " 1", []string{" ", "1"}},

		// GPT-2: case-sensitive contractions, a space glues only to the next run.
		{"gpt-2", "Hello world", []string{"Hello", " world"}},
		{"gpt-2", "I'm", []string{"I", "'m"}},
		{"gpt-2", "I'M", []string{"I", "'", "M"}},
		{"gpt-2", "12345 678", []string{"12345", " 678"}},
		{"gpt-2", "a  b", []string{"a", " ", " b"}},
		{"gpt-2", "x!!\n\ny", []string{"x", "!!", "\n", "\n", "y"}},
		{"gpt-2", "\t\tx", []string{"\t", "\t", "x"}},
		{"gpt-2", "a\xffb", []string{"a", "\uFFFD", "b"}}, // invalid UTF-8 becomes U+FFFD

		// SmolLM: every digit alone first, then GPT-2 within the rest.
		{"smollm", "abc123 def", []string{"abc", "1", "2", "3", " def"}},
		{"smollm", "x 1", []string{"x", " ", "1"}},

		// llama.cpp's default: punctuation runs, GPT-2, number runs, digit triples.
		{"default", "Hello, world!", []string{"Hello", ",", " world", "!"}},
		{"default", "12345 abc", []string{"123", "45", " abc"}},
		{"default", "a+b=c", []string{"a", "+", "b", "=", "c"}},
		{"default", "x 1234", []string{"x", " ", "123", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.pre+"/"+tt.text, func(t *testing.T) {
			p := preTypes[tt.pre]
			var got []string
			for _, w := range p.preTokenize(tt.text) {
				got = append(got, decodeByteLevel(w))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("preTokenize(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestDecodeCodepoints(t *testing.T) {
	tests := []struct {
		in   string
		want []rune
	}{
		{"aé€😀", []rune{'a', 'é', '€', '😀'}},
		{"\xC0\x80", []rune{0}},              // overlong, accepted as llama.cpp does
		{"\xED\xA0\x80", []rune{0xD800}},     // surrogate, likewise
		{"\xE2\x82", []rune{0xFFFD, 0xFFFD}}, // truncated
		{"\x80a", []rune{0xFFFD, 'a'}},       // stray continuation byte
		{"\xF8\x88", []rune{0xFFFD, 0xFFFD}}, // no five-byte forms
	}
	for _, tt := range tests {
		if got := decodeCodepoints(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("decodeCodepoints(%q) = %U, want %U", tt.in, got, tt.want)
		}
	}
}

func TestByteAlphabet(t *testing.T) {
	// The GPT-2 byte alphabet is a bijection that leaves printable Latin-1 alone.
	for b := 0; b < 256; b++ {
		r := byteToRune[b]
		if got := runeToByte[r]; int(got) != b {
			t.Fatalf("byte %#x maps to %U, which maps back to %#x", b, r, got)
		}
	}
	for b, want := range map[byte]rune{' ': 'Ġ', '\n': 'Ċ', 'a': 'a', 0xAD: 'Ń', 0: 'Ā'} {
		if got := byteToRune[b]; got != want {
			t.Errorf("byteToRune[%#x] = %q, want %q", b, got, want)
		}
	}
}
