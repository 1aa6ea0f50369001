package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// spmVocab builds a small SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte
// tokens, then the given pieces with their scores, then extra tokens of other types.
func spmVocab(pieces map[string]float32, extra map[string]int32) Vocab {
	v := Vocab{Model: "llama", BOS: 1, EOS: 2, EOT: -1, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	add := func(s string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, s)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, TypeUnknown)
	add("<s>", 0, TypeControl)
	add("</s>", 0, TypeControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, TypeByte)
	}
	for _, s := range sortedKeys(pieces) {
		add(s, pieces[s], TypeNormal)
	}
	for _, s := range sortedKeys(extra) {
		add(s, 0, extra[s])
	}
	return v
}

// bpeVocab builds a small byte-level BPE vocabulary: the 256 byte symbols, the result
// of each merge (written with ' ' for the space byte; the test converts to Ġ), and
// extra tokens of other types.
func bpeVocab(pre string, merges []string, extra map[string]int32) Vocab {
	v := Vocab{Model: "gpt2", Pre: pre, BOS: -1, EOS: -1, EOT: -1, UNK: -1, PAD: -1}
	seen := map[string]bool{}
	add := func(s string, typ int32) {
		if !seen[s] {
			seen[s] = true
			v.Tokens = append(v.Tokens, s)
			v.Types = append(v.Types, typ)
		}
	}
	for b := 0; b < 256; b++ {
		add(string(byteToRune[b]), TypeNormal)
	}
	for _, m := range merges {
		l, r, _ := strings.Cut(m, "|")
		l, r = byteLevel(l), byteLevel(r)
		v.Merges = append(v.Merges, l+" "+r)
		add(l+r, TypeNormal)
	}
	for _, s := range sortedKeys(extra) {
		add(s, extra[s])
	}
	return v
}

// byteLevel writes s in the GPT-2 byte alphabet.
func byteLevel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mustNew(t *testing.T, v Vocab) *Tokenizer {
	t.Helper()
	tok, err := New(v)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tok
}

// ids looks up token texts; a text the vocabulary lacks fails the test.
func ids(t *testing.T, tok *Tokenizer, texts ...string) []int32 {
	t.Helper()
	out := make([]int32, len(texts))
	for i, s := range texts {
		id, ok := tok.ID(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		out[i] = id
	}
	return out
}

// texts renders ids as their vocabulary entries, for readable failures.
func texts(tok *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.TokenText(id)
	}
	return out
}
