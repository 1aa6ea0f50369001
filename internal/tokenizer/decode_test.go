package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSPMDecode(t *testing.T) {
	tok := mustNew(t, spmVocab(spmPieces, map[string]int32{"<tag>": TypeUserDefined}))
	tests := []struct {
		name string
		toks []string
		opts DecodeOptions
		want string
	}{
		{"first space stripped", []string{"▁hello", "▁a"}, DecodeOptions{}, "hello a"},
		{"only one space stripped", []string{"▁▁", "a"}, DecodeOptions{}, " a"},
		// BOS renders as nothing but still counts as the first token, so the space of
		// the next one stays; with RemoveSpecial llama.cpp keeps it as well.
		{"after BOS", []string{"<s>", "▁hello"}, DecodeOptions{}, " hello"},
		{"after removed BOS", []string{"<s>", "▁hello"}, DecodeOptions{RemoveSpecial: true}, " hello"},
		{"BOS rendered", []string{"<s>", "▁hello"}, DecodeOptions{UnparseSpecial: true}, "<s> hello"},
		{"byte fallback", []string{"▁a", "<0xE2>", "<0x82>", "<0xAC>"}, DecodeOptions{}, "a€"},
		{"newline byte", []string{"▁a", "<0x0A>", "b"}, DecodeOptions{}, "a\nb"},
		{"control and unknown hidden", []string{"▁a", "</s>", "<unk>"}, DecodeOptions{}, "a"},
		{"control and unknown rendered", []string{"▁a", "</s>", "<unk>"}, DecodeOptions{UnparseSpecial: true}, "a</s><unk>"},
		{"user-defined always rendered", []string{"▁a", "<tag>"}, DecodeOptions{}, "a<tag>"},
		{"no clean-up for SPM", []string{"▁a", "▁", "<0x2C>"}, DecodeOptions{}, "a ,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tok.Detokenize(ids(t, tok, tt.toks...), tt.opts); got != tt.want {
				t.Errorf("Detokenize(%q, %+v) = %q, want %q", tt.toks, tt.opts, got, tt.want)
			}
		})
	}
	if got := tok.Decode(ids(t, tok, "▁hello")); got != "hello" {
		t.Errorf("Decode = %q, want %q", got, "hello")
	}
}

func TestSPMRemoveSpecialEOS(t *testing.T) {
	v := spmVocab(spmPieces, nil)
	v.AddEOS = true
	tok := mustNew(t, v)
	in := ids(t, tok, "<s>", "▁a", "</s>")
	if got := tok.Detokenize(in, DecodeOptions{RemoveSpecial: true, UnparseSpecial: true}); got != " a" {
		t.Errorf("Detokenize = %q, want %q", got, " a")
	}
	if got := tok.Detokenize(in, DecodeOptions{UnparseSpecial: true}); got != "<s> a</s>" {
		t.Errorf("Detokenize = %q, want %q", got, "<s> a</s>")
	}
}

func TestBPEDecode(t *testing.T) {
	tests := []struct {
		pre, text, want string
	}{
		{"qwen2", "hello world", "hello world"},
		{"qwen2", "é😀\n", "é😀\n"},
		{"qwen2", "a , b . c ! d ?", "a , b . c ! d ?"}, // Qwen2 keeps spaces
		{"llama-bpe", "a , b . c ! d ?", "a, b. c! d?"},
		{"llama-bpe", "I 'm here", "I'm here"},
		{"llama-bpe", " hello", " hello"}, // no space prefix to strip
	}
	for _, tt := range tests {
		t.Run(tt.pre+"/"+tt.text, func(t *testing.T) {
			tok := mustNew(t, bpeVocab(tt.pre, bpeMerges, bpeSpecial))
			if got := tok.Decode(tok.Encode(tt.text, EncodeOptions{})); got != tt.want {
				t.Errorf("Decode(Encode(%q)) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}

	tok := mustNew(t, bpeVocab("qwen2", bpeMerges, bpeSpecial))
	in := tok.Encode("<|im_start|>hello<think><|im_end|>", EncodeOptions{ParseSpecial: true})
	if got, want := tok.Decode(in), "hello<think>"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if got, want := tok.Detokenize(in, DecodeOptions{UnparseSpecial: true}), "<|im_start|>hello<think><|im_end|>"; got != want {
		t.Errorf("Detokenize(UnparseSpecial) = %q, want %q", got, want)
	}
}

func TestDecodeByteLevelOutsideAlphabet(t *testing.T) {
	// A normal token spelled outside the GPT-2 byte alphabet is shown, not dropped,
	// in llama.cpp's format.
	if got, want := decodeByteLevel("a€"), "a[UNK_BYTE_0xe282aca€]"; got != want {
		t.Errorf("decodeByteLevel = %q, want %q", got, want)
	}
}

func TestCleanSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Hello , world .", "Hello, world."},
		{"what ? no !", "what? no!"},
		{"it ' s", "it's"},
		{"a ' ' b", "a'' b"}, // the skipped space no longer counts before the second one
		{"I 'm we 've they 're he 's", "I'm we've they're he's"},
		{"don 't we 'll I 'd", "don 't we 'll I 'd"},
		{" .", "."},
		{"x ' y", "x'y"},
	}
	for _, tt := range tests {
		if got := string(cleanSpaces([]byte(tt.in))); got != tt.want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecoderHoldsPartialCharacters(t *testing.T) {
	spm := mustNew(t, spmVocab(spmPieces, nil))
	bpe := mustNew(t, bpeVocab("qwen2", bpeMerges, bpeSpecial))
	tests := []struct {
		name string
		tok  *Tokenizer
		toks []string
		want []string // what each Push returns
	}{
		{"SPM byte fallback", spm, []string{"▁a", "<0xE2>", "<0x82>", "<0xAC>", "▁b"},
			[]string{" a", "", "", "€", " b"}},
		{"SPM four-byte emoji", spm, []string{"<0xF0>", "<0x9F>", "<0x98>", "<0x80>"},
			[]string{"", "", "", "😀"}},
		{"SPM control tokens hidden", spm, []string{"<s>", "▁a", "</s>"}, []string{"", " a", ""}},
		{"BPE byte pieces", bpe, []string{"hello", "â", "Ĥ", "¬", "Ġ", "ð", "Ł", "ĺ", "Ģ"},
			[]string{"hello", "", "", "€", " ", "", "", "", "😀"}},
		{"invalid bytes are not held", bpe, []string{"ÿ", "a"}, []string{"\xff", "a"}},
		{"a broken sequence is released", bpe, []string{"â", "a"}, []string{"", "\xe2a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.tok.NewDecoder()
			for i, id := range ids(t, tt.tok, tt.toks...) {
				if got := d.Push(id); got != tt.want[i] {
					t.Errorf("Push(%q) = %q, want %q", tt.toks[i], got, tt.want[i])
				}
			}
			if got := d.Flush(); got != "" {
				t.Errorf("Flush = %q, want nothing", got)
			}
		})
	}
}

func TestDecoderFlush(t *testing.T) {
	tok := mustNew(t, spmVocab(spmPieces, nil))
	d := tok.NewDecoder()
	for _, id := range ids(t, tok, "▁a", "<0xE2>", "<0x82>") {
		d.Push(id)
	}
	if got := d.Flush(); got != "\xe2\x82" {
		t.Errorf("Flush = %q, want the held bytes", got)
	}
	if got := d.Push(ids(t, tok, "▁b")[0]); got != " b" {
		t.Errorf("Push after Flush = %q, want %q", got, " b")
	}
}

func TestDecoderNeverSplitsCharacters(t *testing.T) {
	// Whatever the token boundaries, every Push returns valid UTF-8 and together they
	// give the text back.
	text := "héllo wörld € 😀 日本語 👨‍👩‍👧 ½ ∑ a\nb"
	for _, tok := range []*Tokenizer{
		mustNew(t, spmVocab(spmPieces, nil)),
		mustNew(t, bpeVocab("qwen2", bpeMerges, bpeSpecial)),
		mustNew(t, bpeVocab("llama-bpe", bpeMerges, bpeSpecial)),
	} {
		d := tok.NewDecoder()
		var b strings.Builder
		for _, id := range tok.Encode(text, EncodeOptions{}) {
			s := d.Push(id)
			if !utf8.ValidString(s) {
				t.Fatalf("Push(%q) returned a split character %q", tok.TokenText(id), s)
			}
			b.WriteString(s)
		}
		b.WriteString(d.Flush())
		want := text
		if tok.kind == kindSPM {
			want = " " + text // the space prefix; only Decode strips it
		}
		if b.String() != want {
			t.Errorf("streamed %q, want %q", b.String(), want)
		}
	}
}
