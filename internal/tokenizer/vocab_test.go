package tokenizer

import (
	"errors"
	"strings"
	"testing"
)

func TestNewValidates(t *testing.T) {
	good := func() Vocab { return bpeVocab("qwen2", bpeMerges, nil) }
	tests := []struct {
		name   string
		change func(v *Vocab)
		want   string
	}{
		{"no model", func(v *Vocab) { v.Model = "" }, "model is not set"},
		{"unknown model", func(v *Vocab) { v.Model = "t5" }, `unsupported model "t5"`},
		{"unknown pre-tokenizer", func(v *Vocab) { v.Pre = "klingon" }, `unsupported pre-tokenizer "klingon"`},
		{"no tokens", func(v *Vocab) { v.Tokens, v.Types = nil, nil }, "no tokens"},
		{"scores length", func(v *Vocab) { v.Scores = []float32{0} }, "1 scores for"},
		{"types length", func(v *Vocab) { v.Types = v.Types[1:] }, "token types for"},
		{"bad type", func(v *Vocab) { v.Types[3] = 9 }, "token 3: unknown token type 9"},
		{"duplicate", func(v *Vocab) { v.Tokens[1] = v.Tokens[0] }, "duplicate token"},
		{"bos range", func(v *Vocab) { v.BOS = int32(len(v.Tokens)) }, "bos token id"},
		{"eos negative", func(v *Vocab) { v.EOS = -2 }, "eos token id -2"},
		{"add_bos without bos", func(v *Vocab) { v.AddBOS = true }, "add_bos_token is set"},
		{"add_eos without eos", func(v *Vocab) { v.AddEOS = true }, "add_eos_token is set"},
		{"no merges", func(v *Vocab) { v.Merges = nil }, "no merges"},
		{"merge without space", func(v *Vocab) { v.Merges[2] = "ab" }, `merge 2 "ab" has no space`},
		{"merge of unknown token", func(v *Vocab) { v.Merges[0] = "l zz" }, `refers to unknown token "zz"`},
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("New(good vocabulary): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good()
			tt.change(&v)
			_, err := New(v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
			want := ErrInvalidVocab
			if strings.Contains(tt.want, "unsupported") {
				want = ErrUnsupported
			}
			if !errors.Is(err, want) {
				t.Errorf("New = %v, want it to match %v", err, want)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	// Scores and types may be absent, and SPM ignores the pre-tokenizer and merges.
	v := Vocab{Model: "llama", Pre: "whatever", Tokens: []string{"<unk>", "▁a", ""}, Merges: []string{"x"},
		BOS: -1, EOS: -1, EOT: -1, UNK: 0, PAD: -1}
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.TokenText(2); got != "[EMPTY_2]" {
		t.Errorf("empty token renamed to %q, want [EMPTY_2] as llama.cpp does", got)
	}
	if tok.Len() != 3 || tok.TokenText(3) != "" || tok.TokenText(-1) != "" {
		t.Errorf("Len or TokenText out of range wrong")
	}
}

func TestEndOfGeneration(t *testing.T) {
	v := bpeVocab("qwen2", bpeMerges, map[string]int32{
		"<|endoftext|>": TypeControl,
		"<|im_start|>":  TypeControl,
		"<|im_end|>":    TypeNormal, // marked control by its text, as llama.cpp does
		"<|fim_pad|>":   TypeUserDefined,
		"<|file_sep|>":  TypeUserDefined,
		"<think>":       TypeUserDefined,
		"<|eot_id|>":    TypeControl,
	})
	v.EOS, _ = indexOf(v.Tokens, "<|endoftext|>")
	tok := mustNew(t, v)
	for _, tc := range []struct {
		text    string
		eog     bool
		control bool
	}{
		{"<|endoftext|>", true, true},
		{"<|im_end|>", true, true},
		{"<|eot_id|>", true, true},
		{"<|fim_pad|>", true, true},
		{"<|file_sep|>", true, true},
		{"<|im_start|>", false, true},
		{"<think>", false, false},
		{"hello", false, false},
	} {
		id := ids(t, tok, tc.text)[0]
		if got := tok.IsEOG(id); got != tc.eog {
			t.Errorf("IsEOG(%s) = %v, want %v", tc.text, got, tc.eog)
		}
		if got := tok.IsControl(id); got != tc.control {
			t.Errorf("IsControl(%s) = %v, want %v", tc.text, got, tc.control)
		}
	}
	// With two candidates for end-of-turn, the lower id wins.
	if got, want := tok.TokenText(tok.EOT()), "<|endoftext|>"; got != want {
		t.Errorf("EOT = %q, want %q", got, want)
	}
	if tok.IsEOG(-1) {
		t.Error("IsEOG(-1) = true")
	}
	// A normal token turned control is no longer found in text without ParseSpecial.
	if got := tok.Encode("<|im_end|>", EncodeOptions{}); len(got) == 1 {
		t.Errorf("Encode(<|im_end|>) = %v, want it spelled out", got)
	}
}

func TestEndOfGenerationExceptions(t *testing.T) {
	// gpt-oss: with <|return|> and <|call|> present, <|end|> only ends a message.
	v := bpeVocab("gpt-2", bpeMerges, map[string]int32{
		"<|end|>": TypeControl, "<|return|>": TypeControl, "<|call|>": TypeControl, "<|channel|>": TypeControl,
	})
	tok := mustNew(t, v)
	end, ch := ids(t, tok, "<|end|>")[0], ids(t, tok, "<|channel|>")[0]
	if tok.IsEOG(end) {
		t.Error("IsEOG(<|end|>) = true with <|return|> and <|call|> present")
	}
	if !tok.IsEOG(ids(t, tok, "<|return|>")[0]) {
		t.Error("IsEOG(<|return|>) = false")
	}
	// Such tokens become user-defined: rendered, and found in text, always.
	if got := tok.Decode([]int32{end, ch}); got != "<|end|><|channel|>" {
		t.Errorf("Decode = %q, want the tokens rendered", got)
	}
	if got := tok.Encode("<|channel|>", EncodeOptions{}); len(got) != 1 || got[0] != ch {
		t.Errorf("Encode(<|channel|>) = %v, want [%d]", got, ch)
	}
}

func TestDefaultsFor(t *testing.T) {
	tests := []struct {
		model, pre string
		want       Defaults
	}{
		{"llama", "", Defaults{BOS: 1, EOS: 2, UNK: 0, AddBOS: true, AddSpacePrefix: true}},
		{"gpt2", "llama-bpe", Defaults{BOS: 11, EOS: 11, UNK: -1, AddBOS: true}},
		{"gpt2", "qwen2", Defaults{BOS: 11, EOS: 11, UNK: -1}},
		{"t5", "", Defaults{BOS: -1, EOS: -1, UNK: -1}},
	}
	for _, tt := range tests {
		if got := DefaultsFor(tt.model, tt.pre); got != tt.want {
			t.Errorf("DefaultsFor(%q, %q) = %+v, want %+v", tt.model, tt.pre, got, tt.want)
		}
	}
}
