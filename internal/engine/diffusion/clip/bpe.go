// Package clip is the text side of Stable Diffusion: CLIP's byte-level BPE
// tokenizer with AUTOMATIC1111 prompt emphasis, and the CLIP text encoder.
//
// The tokenizer follows OpenAI CLIP (and stable-diffusion.cpp, whose images
// the engine is checked against): text is whitespace-cleaned and
// lowercased, pre-split into words, each word's UTF-8 bytes mapped to
// printable characters and merged by rank, the last symbol of a word
// carrying the `</w>` end-of-word marker. The merge list is embedded
// (clip-bpe-merges.txt, MIT, see LICENSE-clip-bpe-merges.txt), so a
// single-file checkpoint needs nothing else.
package clip

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

//go:embed clip-bpe-merges.txt
var mergesText []byte

// Special token ids of CLIP's vocabulary.
const (
	// BOS is <|startoftext|>.
	BOS = 49406
	// EOS is <|endoftext|>; SD 1.x also pads with it.
	EOS = 49407
	// VocabSize is the number of tokens.
	VocabSize = 49408
	// numMerges is the number of merges in the list.
	numMerges = 48894
	// endOfWord marks the last symbol of a word.
	endOfWord = "</w>"
)

// Tokenizer is CLIP's BPE tokenizer. It is immutable and safe for
// concurrent use.
type Tokenizer struct {
	vocab   map[string]int32 // token text → id
	words   []string         // id → token text
	byteSym [256]int32       // byte → its symbol's id
	byteEnd [256]int32       // byte → its symbol's id with </w>
	ranks   map[[2]int32]merge
}

// merge is one rule: the rank (lower merges first) and the resulting token.
type merge struct {
	rank int32
	id   int32
}

var (
	defaultOnce sync.Once
	defaultTok  *Tokenizer
	defaultErr  error
)

// Default returns the tokenizer built from the embedded merge list (built
// once, on first use).
func Default() (*Tokenizer, error) {
	defaultOnce.Do(func() { defaultTok, defaultErr = NewTokenizer(mergesText) })
	return defaultTok, defaultErr
}

// bytesToUnicode is GPT-2's reversible map from bytes to printable runes:
// printable Latin-1 bytes map to themselves, the rest to 256 upward, in
// byte order. The vocabulary starts with these 256 runes in this order.
func bytesToUnicode() (order []byte, runes [256]rune) {
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			order = append(order, byte(b))
			runes[b] = rune(b)
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order = append(order, byte(b))
			runes[b] = rune(256 + n)
			n++
		}
	}
	return order, runes
}

// NewTokenizer builds a tokenizer from a CLIP merge list: a header line,
// then one `a b` merge per line. The vocabulary is the 256 byte symbols,
// the same with </w>, one token per merge in order, then BOS and EOS.
func NewTokenizer(merges []byte) (*Tokenizer, error) {
	t := &Tokenizer{
		vocab: make(map[string]int32, VocabSize),
		words: make([]string, 0, VocabSize),
		ranks: make(map[[2]int32]merge, numMerges),
	}
	add := func(s string) {
		// A later duplicate wins, as in CLIP's own dict(zip(vocab, range)).
		t.vocab[s] = int32(len(t.words))
		t.words = append(t.words, s)
	}
	order, runes := bytesToUnicode()
	for _, b := range order {
		add(string(runes[b]))
	}
	for _, b := range order {
		add(string(runes[b]) + endOfWord)
	}
	var pairs [][2]string
	sc := bufio.NewScanner(bytes.NewReader(merges))
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // "#version: 0.2"
		}
		a, b, ok := strings.Cut(sc.Text(), " ")
		if !ok || a == "" || b == "" {
			return nil, fmt.Errorf("clip: merge line %d: %q is not a pair", line+1, sc.Text())
		}
		pairs = append(pairs, [2]string{a, b})
		add(a + b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("clip: merges: %w", err)
	}
	if len(pairs) != numMerges {
		return nil, fmt.Errorf("clip: %d merges, want %d", len(pairs), numMerges)
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	for i, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		if !okA || !okB {
			return nil, fmt.Errorf("clip: merge %d (%s %s) joins a symbol that is not a token", i+1, p[0], p[1])
		}
		key := [2]int32{a, b}
		if _, dup := t.ranks[key]; !dup { // the first (lowest) rank counts
			t.ranks[key] = merge{rank: int32(i), id: t.vocab[p[0]+p[1]]}
		}
	}
	for b := 0; b < 256; b++ {
		t.byteSym[b] = t.vocab[string(runes[b])]
		t.byteEnd[b] = t.vocab[string(runes[b])+endOfWord]
	}
	return t, nil
}

// Token returns the text of token id ("" when out of range): byte symbols
// as their printable runes, with </w> where a word ends.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.words) {
		return ""
	}
	return t.words[id]
}

// bpe appends the tokens of one pre-split word to dst.
func (t *Tokenizer) bpe(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	syms := make([]int32, len(word))
	for i := 0; i < len(word); i++ {
		syms[i] = t.byteSym[word[i]]
	}
	syms[len(syms)-1] = t.byteEnd[word[len(word)-1]]
	for len(syms) > 1 {
		// The adjacent pair of lowest rank merges next, every occurrence
		// of it left to right, as CLIP's bpe() does.
		best := merge{rank: -1}
		var bestPair [2]int32
		for i := 0; i+1 < len(syms); i++ {
			p := [2]int32{syms[i], syms[i+1]}
			if m, ok := t.ranks[p]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, bestPair = m, p
			}
		}
		if best.rank < 0 {
			break
		}
		out := syms[:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == bestPair[0] && syms[i+1] == bestPair[1] {
				out = append(out, best.id)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	for _, s := range syms {
		dst = append(dst, int(s))
	}
	return dst
}
