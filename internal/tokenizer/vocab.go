// Package tokenizer turns text into token ids and back the way llama.cpp does for the
// vocabularies stored in GGUF files: SentencePiece-style BPE ("llama" model, SPM) and
// GPT-2-style byte-level BPE ("gpt2" model) with the pre-tokenizers of Llama 3, Qwen2/3,
// SmolLM, GPT-2 and llama.cpp's default.
//
// The package does not read GGUF files: the caller passes the tokenizer.ggml.* metadata
// in a Vocab. The behaviour follows llama.cpp's llama-vocab.cpp and unicode.cpp, quirks
// included, so that a model served by neovratz sees the same token ids as under
// llama.cpp: special-token partitioning, the space prefix after every special token for
// SPM, the hand-written pre-tokenizers (which differ from the regular expressions they
// stand for in corner cases), byte fallback, and the detokenizer's space clean-up.
package tokenizer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors returned by New, wrapped with the details.
var (
	// ErrUnsupported reports a tokenizer model or pre-tokenizer this package lacks.
	ErrUnsupported = errors.New("tokenizer: unsupported")
	// ErrInvalidVocab reports metadata that contradicts itself.
	ErrInvalidVocab = errors.New("tokenizer: invalid vocabulary")
)

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w "+format, append([]any{ErrUnsupported}, args...)...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidVocab}, args...)...)
}

// Token types as stored in tokenizer.ggml.token_type.
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// attr mirrors llama.cpp's llama_token_attr bits; a token's type becomes one of them,
// and load-time fix-ups may add CONTROL or replace the attribute.
type attr uint16

const (
	attrUnknown attr = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
)

// Vocab is the tokenizer metadata of a GGUF file (the tokenizer.ggml.* keys). Token ids
// that a file does not set are -1. Where a file lacks a flag, use DefaultsFor to get the
// value llama.cpp would assume.
type Vocab struct {
	// Model is tokenizer.ggml.model: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE).
	Model string
	// Pre is tokenizer.ggml.pre, the pre-tokenizer of a gpt2 model: "default" (or empty),
	// "llama-bpe" (Llama 3), "qwen2", "smollm", "gpt-2", and the other names llama.cpp maps
	// to the same splitters. Ignored for SPM.
	Pre string
	// Tokens is tokenizer.ggml.tokens, indexed by id.
	Tokens []string
	// Scores is tokenizer.ggml.scores (nil: all zero). SPM merges by these.
	Scores []float32
	// Types is tokenizer.ggml.token_type (nil: all normal); see the Type constants.
	Types []int32
	// Merges is tokenizer.ggml.merges, "left right" in rank order; required for gpt2.
	Merges []string
	// BOS, EOS, EOT, UNK and PAD are the special token ids, -1 where unset.
	BOS, EOS, EOT, UNK, PAD int32
	// AddBOS and AddEOS are tokenizer.ggml.add_bos_token and add_eos_token.
	AddBOS, AddEOS bool
	// AddSpacePrefix is tokenizer.ggml.add_space_prefix.
	AddSpacePrefix bool
}

// Defaults are the values llama.cpp assumes for a model and pre-tokenizer when a GGUF
// file lacks the corresponding keys.
type Defaults struct {
	BOS, EOS, UNK                  int32
	AddBOS, AddEOS, AddSpacePrefix bool
}

// DefaultsFor returns llama.cpp's fallbacks for the tokenizer.ggml.model and
// tokenizer.ggml.pre values given.
func DefaultsFor(model, pre string) Defaults {
	switch model {
	case "llama":
		return Defaults{BOS: 1, EOS: 2, UNK: 0, AddBOS: true, AddSpacePrefix: true}
	case "gpt2":
		d := Defaults{BOS: 11, EOS: 11, UNK: -1}
		if p, ok := preTypes[pre]; ok {
			d.AddBOS = p.addBOS
		}
		return d
	}
	return Defaults{BOS: -1, EOS: -1, UNK: -1}
}

type kind int

const (
	kindSPM kind = iota
	kindBPE
)

// Tokenizer encodes text into token ids and decodes them back. It is safe for
// concurrent use.
type Tokenizer struct {
	kind kind
	pre  preType

	tokens []string
	scores []float32
	attrs  []attr
	ids    map[string]int32

	bos, eos, eot, eom, unk int32
	addBOS, addEOS          bool
	addSpacePrefix          bool

	ranks   map[[2]string]int32 // BPE merge ranks
	byteIDs [256]int32          // SPM byte fallback

	special []int32 // control, user-defined and unknown tokens, longest text first
	eog     map[int32]bool
	pieces  []string // each token rendered as text, special tokens included
}

// New builds a tokenizer from v, checking that it is consistent.
func New(v Vocab) (*Tokenizer, error) {
	t := &Tokenizer{bos: v.BOS, eos: v.EOS, eot: v.EOT, eom: -1, unk: v.UNK,
		addBOS: v.AddBOS, addEOS: v.AddEOS, addSpacePrefix: v.AddSpacePrefix}
	switch v.Model {
	case "llama":
		t.kind = kindSPM
	case "gpt2":
		t.kind = kindBPE
		p, ok := preTypes[v.Pre]
		if !ok {
			return nil, unsupported("pre-tokenizer %q", v.Pre)
		}
		t.pre = p
	case "":
		return nil, invalid("model is not set")
	default:
		return nil, unsupported("model %q (want llama or gpt2)", v.Model)
	}

	n := len(v.Tokens)
	if n == 0 {
		return nil, invalid("no tokens")
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, invalid("%d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, invalid("%d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"eot", v.EOT}, {"unk", v.UNK}, {"pad", v.PAD}} {
		if s.id < -1 || int(s.id) >= n {
			return nil, invalid("%s token id %d out of range [0,%d)", s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, invalid("add_bos_token is set but there is no bos token")
	}
	if v.AddEOS && v.EOS < 0 {
		return nil, invalid("add_eos_token is set but there is no eos token")
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]attr, n)
	t.ids = make(map[string]int32, n)
	for i, s := range v.Tokens {
		if s == "" {
			// llama.cpp renames empty tokens rather than refusing the file.
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if j, dup := t.ids[s]; dup {
			return nil, invalid("duplicate token %q at ids %d and %d", s, j, i)
		}
		t.ids[s] = int32(i)
		t.tokens[i] = s
		if v.Scores != nil {
			t.scores[i] = v.Scores[i]
		}
		t.attrs[i] = attrNormal
		if v.Types != nil {
			a, err := typeAttr(v.Types[i])
			if err != nil {
				return nil, invalid("token %d: %v", i, err)
			}
			t.attrs[i] = a
		}
	}

	if t.kind == kindBPE {
		if len(v.Merges) == 0 {
			return nil, invalid("gpt2 vocabulary has no merges")
		}
		t.ranks = make(map[[2]string]int32, len(v.Merges))
		for i, m := range v.Merges {
			// Split at the first space after the first byte, as llama.cpp does, so a
			// merge whose left part starts with a space still parses.
			k := -1
			if len(m) > 1 {
				if j := strings.IndexByte(m[1:], ' '); j >= 0 {
					k = j + 1
				}
			}
			if k < 0 {
				return nil, invalid("merge %d %q has no space", i, m)
			}
			pair := [2]string{m[:k], m[k+1:]}
			for _, part := range pair {
				if _, ok := t.ids[part]; !ok {
					return nil, invalid("merge %d %q refers to unknown token %q", i, m, part)
				}
			}
			if _, dup := t.ranks[pair]; !dup {
				t.ranks[pair] = int32(i)
			}
		}
	}

	t.markSpecial()
	t.buildCaches()
	return t, nil
}

func typeAttr(typ int32) (attr, error) {
	switch typ {
	case TypeUndefined:
		return 0, nil
	case TypeNormal:
		return attrNormal, nil
	case TypeUnknown:
		return attrUnknown, nil
	case TypeControl:
		return attrControl, nil
	case TypeUserDefined:
		return attrUserDefined, nil
	case TypeUnused:
		return attrUnused, nil
	case TypeByte:
		return attrByte, nil
	}
	return 0, fmt.Errorf("unknown token type %d", typ)
}

// Token texts llama.cpp recognises at load time. Where it walks a hash map and keeps
// the first match, this package keeps the lowest id.
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>",
		"▁<PRE>", "<|code_prefix|>", "<|prefix|>"}
	fimSufTexts = []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>",
		"▁<SUF>", "<|code_suffix|>", "<|suffix|>"}
	fimMidTexts = []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>",
		"▁<MID>", "<|code_middle|>", "<|middle|>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}
	eogTexts    = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]",
		"[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
		"<｜end▁of▁sentence｜>", "[e~["}
	// Tokens of gpt-oss that llama.cpp always renders.
	renderedTexts = []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}
)

// markSpecial repeats llama.cpp's load-time guesses: end-of-turn and fill-in-the-middle
// tokens found by their text become control tokens, and the end-of-generation set is
// built from them.
func (t *Tokenizer) markSpecial() {
	find := func(texts []string) int32 {
		best := int32(-1)
		for _, s := range texts {
			if id, ok := t.ids[s]; ok && (best < 0 || id < best) {
				best = id
			}
		}
		if best >= 0 {
			t.attrs[best] |= attrControl
		}
		return best
	}
	if t.eot < 0 {
		t.eot = find(eotTexts)
	}
	t.eom = find(eomTexts)
	find(fimPreTexts)
	find(fimSufTexts)
	find(fimMidTexts)
	fimPad, fimRep, fimSep := find(fimPadTexts), find(fimRepTexts), find(fimSepTexts)

	t.eog = map[int32]bool{}
	for _, id := range []int32{fimPad, fimRep, fimSep} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	for _, s := range eogTexts {
		if id, ok := t.ids[s]; ok {
			t.eog[id] = true
			t.attrs[id] |= attrControl
		}
	}
	for _, s := range renderedTexts {
		if id, ok := t.ids[s]; ok {
			t.attrs[id] = attrUserDefined
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}

	// gpt-oss and solar-open: <|end|> ends a message, not the generation.
	has := func(s string) bool { id, ok := t.ids[s]; return ok && t.eog[id] }
	if end, ok := t.ids["<|end|>"]; ok && t.eog[end] &&
		((has("<|return|>") && (has("<|call|>") || has("<|calls|>"))) ||
			((has("<|call|>") || has("<|calls|>")) && has("<|flush|>"))) {
		delete(t.eog, end)
		t.attrs[end] = attrUserDefined
	}
	// gemma4 and paddleocr: </s> is an ordinary token there.
	if s, ok := t.ids["</s>"]; ok && t.eog[s] && has("<|tool_response>") {
		delete(t.eog, s)
		t.attrs[s] = attrNormal
	}
}

func (t *Tokenizer) buildCaches() {
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.special = append(t.special, int32(id))
		}
	}
	// Longest first, so that a special token is never split by a shorter one inside it.
	slices.SortStableFunc(t.special, func(a, b int32) int {
		return cmp.Compare(len(t.tokens[b]), len(t.tokens[a]))
	})
	t.buildByteTokens()
	t.pieces = make([]string, len(t.tokens))
	for id := range t.tokens {
		t.pieces[id] = t.renderPiece(int32(id))
	}
}

// Len returns the number of tokens in the vocabulary.
func (t *Tokenizer) Len() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT returns the end-of-turn token id (given, or found by its text as llama.cpp
// does), or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// TokenText returns the vocabulary entry of id as stored (with "▁" or the GPT-2 byte
// alphabet, not decoded), or "" when id is out of range.
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of the token whose vocabulary entry is text.
func (t *Tokenizer) ID(text string) (int32, bool) {
	id, ok := t.ids[text]
	return id, ok
}

// IsEOG reports whether id ends generation: EOS, EOT, end-of-message, and the tokens
// llama.cpp adds by their text (<|im_end|>, <|eot_id|>, <|end_of_text|>, <end_of_turn>,
// <|endoftext|>, fill-in-the-middle padding and separators, …).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control token (rendered only on request, and
// recognised in text only with EncodeOptions.ParseSpecial).
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&attrControl != 0
}
