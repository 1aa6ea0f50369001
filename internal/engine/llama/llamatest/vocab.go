package llamatest

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// words make up the synthetic vocabularies: enough for prompts of ordinary English to be
// tokenized into whole words, with the rest falling back to pieces and bytes.
var words = []string{
	"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "a", "is",
	"of", "and", "to", "in", "it", "you", "that", "was", "for", "on", "are", "with", "as", "be",
	"at", "one", "have", "this", "from", "by", "hot", "word", "but", "what", "some", "can",
	"out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an",
	"each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then",
	"them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see",
	"him", "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound",
	"no", "most", "people", "my", "water", "than", "first", "been", "call", "who", "oil", "its",
	"now", "find", "cat", "sat", "mat", "once", "upon",
}

// vocab is a tokenizer.ggml.* section.
type vocab struct {
	model, pre string
	tokens     []string
	types      []int32
	scores     []float32 // SPM only
	merges     []string  // BPE only
	bos, eos   int
	addBOS     bool
}

func (v *vocab) add(s string, typ int32) int {
	v.tokens = append(v.tokens, s)
	v.types = append(v.types, typ)
	// SentencePiece merges the pair whose result scores highest: earlier pieces win.
	v.scores = append(v.scores, -float32(len(v.tokens)))
	return len(v.tokens) - 1
}

func (v *vocab) set(set func(string, gguf.Value)) {
	set("tokenizer.ggml.model", gguf.ValueOf(v.model))
	if v.pre != "" {
		set("tokenizer.ggml.pre", gguf.ValueOf(v.pre))
	}
	set("tokenizer.ggml.tokens", gguf.ArrayOf(v.tokens))
	set("tokenizer.ggml.token_type", gguf.ArrayOf(v.types))
	if v.model == "llama" {
		set("tokenizer.ggml.scores", gguf.ArrayOf(v.scores))
	} else {
		set("tokenizer.ggml.merges", gguf.ArrayOf(v.merges))
	}
	set("tokenizer.ggml.bos_token_id", gguf.ValueOf(uint32(v.bos)))
	set("tokenizer.ggml.eos_token_id", gguf.ValueOf(uint32(v.eos)))
	set("tokenizer.ggml.add_bos_token", gguf.ValueOf(v.addBOS))
}

// Token types, as in tokenizer.ggml.token_type.
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

// vocabulary returns the synthetic vocabulary of arch, padded to n tokens: SentencePiece for
// llama (as Llama 2, Mistral and TinyLlama have), byte-level BPE with Qwen2's pre-tokenizer
// and ChatML markers for qwen2 and qwen3.
func vocabulary(arch string, n int) *vocab {
	if arch == "llama" {
		return spmVocabulary(n)
	}
	return bpeVocabulary(n)
}

func spmVocabulary(n int) *vocab {
	v := &vocab{model: "llama", bos: 1, eos: 2, addBOS: true}
	v.add("<unk>", typeUnknown)
	v.add("<s>", typeControl)
	v.add("</s>", typeControl)
	for b := range 256 {
		v.add(fmt.Sprintf("<0x%02X>", b), typeByte)
	}
	seen := map[string]bool{}
	piece := func(s string) {
		if !seen[s] {
			seen[s] = true
			v.add(s, typeNormal)
		}
	}
	piece("▁")
	for _, c := range "abcdefghijklmnopqrstuvwxyz.,!?'0123456789" {
		piece(string(c))
	}
	// Every prefix of "▁word" is a piece, so the merges can reach the whole word.
	for _, w := range words {
		s := "▁" + w
		for i := len("▁") + 1; i <= len(s); i++ {
			piece(s[:i])
		}
	}
	for i := 0; len(v.tokens) < n; i++ {
		piece(fmt.Sprintf("▁pad%d", i))
	}
	return v
}

func bpeVocabulary(n int) *vocab {
	v := &vocab{model: "gpt2", pre: "qwen2"}
	seen := map[string]bool{}
	tok := func(s string) {
		if !seen[s] {
			seen[s] = true
			v.add(s, typeNormal)
		}
	}
	for b := range 256 {
		tok(string(byteRune(byte(b))))
	}
	// Merge each word (and the word after a space) left to right, one symbol at a time.
	for _, w := range words {
		for _, s := range []string{" " + w, w} {
			cur := string(byteRune(s[0]))
			for i := 1; i < len(s); i++ {
				next := string(byteRune(s[i]))
				if !seen[cur+next] {
					v.merges = append(v.merges, cur+" "+next)
					tok(cur + next)
				}
				cur += next
			}
		}
	}
	specials := []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	for i := 0; len(v.tokens) < n-len(specials); i++ {
		tok(fmt.Sprintf("Ġpad%d", i))
	}
	for _, s := range specials {
		v.add(s, typeControl)
	}
	v.bos = len(v.tokens) - 3 // <|endoftext|>, which Qwen files name as BOS without adding it
	v.eos = len(v.tokens) - 1 // <|im_end|>
	return v
}

// byteRune is GPT-2's byte-level alphabet: printable bytes stand for themselves, the others
// for the code points from U+0100 up, in order.
func byteRune(b byte) rune {
	switch {
	case b >= '!' && b <= '~', b >= 0xA1 && b <= 0xAC, b >= 0xAE:
		return rune(b)
	}
	n := 0
	for c := 0; c < int(b); c++ {
		cb := byte(c)
		if !(cb >= '!' && cb <= '~' || cb >= 0xA1 && cb <= 0xAC || cb >= 0xAE) {
			n++
		}
	}
	return rune(256 + n)
}
