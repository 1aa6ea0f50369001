package tokenizer

import "unicode"

// A splitter cuts one piece of text (code points) into smaller pieces, appending their
// lengths to out. The pieces of one splitter are the input of the next.
type splitter func(c []rune, out []int) []int

// preType is what a tokenizer.ggml.pre name selects in llama.cpp.
type preType struct {
	splitters    []splitter
	ignoreMerges bool // a pre-token that is itself a token is not merged from its parts
	cleanSpaces  bool // the detokenizer removes spaces before punctuation
	addBOS       bool // llama.cpp's default for add_bos_token
}

var (
	splitDefault = []splitter{splitPunctuationRuns, splitGPT2, splitNumberRuns, splitDigitTriples}
	splitL3      = []splitter{splitLlama3}
	splitQ2      = []splitter{splitQwen2}
	splitSmolLM  = []splitter{splitEachNumber, splitGPT2}
	splitG2      = []splitter{splitGPT2}
)

// preTypes lists the names llama.cpp accepts whose splitters this package implements,
// with the flags llama.cpp attaches to each name.
var preTypes = map[string]preType{
	"":        {splitters: splitDefault, cleanSpaces: true},
	"default": {splitters: splitDefault, cleanSpaces: true},

	"llama3":       {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"llama-v3":     {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"llama-bpe":    {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"falcon3":      {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"falcon-h1":    {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"pixtral":      {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"midm-2.0":     {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"lfm2":         {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"jina-v5-nano": {splitters: splitL3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"dbrx":         {splitters: splitL3, cleanSpaces: true},
	"smaug-bpe":    {splitters: splitL3, cleanSpaces: true},

	"qwen2":            {splitters: splitQ2},
	"deepseek-r1-qwen": {splitters: splitQ2},
	"kormo":            {splitters: splitQ2},
	"f2llmv2":          {splitters: splitQ2},
	"hunyuan":          {splitters: splitQ2},
	"solar-open":       {splitters: splitQ2},
	"grok-2":           {splitters: splitQ2},
	"megrez":           {splitters: splitQ2, cleanSpaces: true},
	"stablelm2":        {splitters: splitQ2, cleanSpaces: true},

	"smollm":     {splitters: splitSmolLM},
	"command-r":  {splitters: splitSmolLM},
	"starcoder":  {splitters: splitSmolLM, cleanSpaces: true},
	"refact":     {splitters: splitSmolLM, cleanSpaces: true},
	"codeshell":  {splitters: splitSmolLM, cleanSpaces: true},
	"exaone":     {splitters: splitSmolLM, cleanSpaces: true},
	"minerva-7b": {splitters: splitSmolLM, cleanSpaces: true},
	"mellum2":    {splitters: splitSmolLM, cleanSpaces: true},

	"gpt-2": {splitters: splitG2, cleanSpaces: true},
	// "gpt2" is not a name llama.cpp knows; accepted as an alias of "gpt-2".
	"gpt2":            {splitters: splitG2, cleanSpaces: true},
	"phi-2":           {splitters: splitG2, cleanSpaces: true},
	"jina-es":         {splitters: splitG2, cleanSpaces: true},
	"jina-de":         {splitters: splitG2, cleanSpaces: true},
	"gigachat":        {splitters: splitG2, cleanSpaces: true},
	"jina-v2-es":      {splitters: splitG2, cleanSpaces: true},
	"jina-v2-de":      {splitters: splitG2, cleanSpaces: true},
	"a.x-4.0":         {splitters: splitG2, cleanSpaces: true},
	"mellum":          {splitters: splitG2, cleanSpaces: true},
	"modern-bert":     {splitters: splitG2, cleanSpaces: true},
	"exaone4":         {splitters: splitG2, cleanSpaces: true},
	"mpt":             {splitters: splitG2, cleanSpaces: true},
	"olmo":            {splitters: splitG2, cleanSpaces: true},
	"jais":            {splitters: splitG2, cleanSpaces: true},
	"trillion":        {splitters: splitG2},
	"granite-docling": {splitters: splitG2},
}

// preTokenize splits text into the words that BPE merges within, each returned in the
// GPT-2 byte alphabet.
func (p *preType) preTokenize(text string) []string {
	cpts := decodeCodepoints(text)
	lens := []int{len(cpts)}
	var next []int
	for _, split := range p.splitters {
		next = next[:0]
		start := 0
		for _, n := range lens {
			next = split(cpts[start:start+n], next)
			start += n
		}
		lens, next = next, lens
	}
	words := make([]string, 0, len(lens))
	var raw, enc []byte
	start := 0
	for _, n := range lens {
		raw = raw[:0]
		for _, r := range cpts[start : start+n] {
			raw = appendCodepoint(raw, r)
		}
		enc = enc[:0]
		for _, b := range raw {
			enc = appendCodepoint(enc, byteToRune[b])
		}
		words = append(words, string(enc))
		start += n
	}
	return words
}

// piece is a cursor over one piece of text; positions outside it read as "no
// character", which every class test rejects.
type piece []rune

func (c piece) at(i int) rune {
	if i < len(c) {
		return c[i]
	}
	return -1
}
func (c piece) letter(i int) bool { return i < len(c) && isLetter(c[i]) }
func (c piece) number(i int) bool { return i < len(c) && isNumber(c[i]) }
func (c piece) space(i int) bool  { return i < len(c) && isSpace(c[i]) }
func (c piece) other(i int) bool  { return i < len(c) && isOther(c[i]) }

// spaceRun returns the length of the run of whitespace at i and the end of the last
// '\r' or '\n' in it (0 when it has none).
func (c piece) spaceRun(i int) (n, lastNewline int) {
	for c.space(i + n) {
		if r := c[i+n]; r == '\r' || r == '\n' {
			lastNewline = i + n + 1
		}
		n++
	}
	return n, lastNewline
}

// splitGPT2 is llama.cpp's hand-written form of GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(c []rune, out []int) []int {
	p := piece(c)
	for pos := 0; pos < len(p); {
		start := pos
		r := p[pos]
		if n := contraction(p, pos, false); n > 0 {
			out = append(out, n)
			pos += n
			continue
		}
		q := pos // where the class run would start after an optional space
		if r == ' ' {
			q++
		}
		switch {
		case p.letter(q):
			for pos = q; p.letter(pos); pos++ {
			}
		case p.number(q):
			for pos = q; p.number(pos); pos++ {
			}
		case p.other(q):
			for pos = q; p.other(pos); pos++ {
			}
		default:
			n, _ := p.spaceRun(pos)
			switch {
			case n > 1 && pos+n < len(p): // \s+(?!\S): leave one space for the next word
				pos += n - 1
			case n > 0:
				pos += n
			default:
				pos++
			}
		}
		out = append(out, pos-start)
	}
	return out
}

// contraction returns the length of 's, 't, 're, 've, 'm, 'll or 'd at pos (0 if none),
// case-insensitively when fold is set. Like llama.cpp, it needs a character after the
// apostrophe inside the piece.
func contraction(p piece, pos int, fold bool) int {
	if p[pos] != '\'' || pos+1 >= len(p) {
		return 0
	}
	lower := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	switch r1 := lower(p[pos+1]); r1 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v', 'l':
		if pos+2 < len(p) {
			r2 := lower(p[pos+2])
			if (r1 == 'r' && r2 == 'e') || (r1 == 'v' && r2 == 'e') || (r1 == 'l' && r2 == 'l') {
				return 3
			}
		}
	}
	return 0
}

// splitLlama3 is llama.cpp's hand-written form of Llama 3's pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(c []rune, out []int) []int {
	p := piece(c)
	for pos := 0; pos < len(p); {
		start := pos
		r := p[pos]
		if n := contraction(p, pos, true); n > 0 {
			out = append(out, n)
			pos += n
			continue
		}
		if r != '\r' && r != '\n' && !isNumber(r) && (isLetter(r) || p.letter(pos+1)) {
			for pos++; p.letter(pos); pos++ {
			}
			out = append(out, pos-start)
			continue
		}
		if isNumber(r) {
			for ; p.number(pos); pos++ {
				if pos+1-start == 3 {
					out = append(out, 3)
					start = pos + 1
				}
			}
			if pos > start {
				out = append(out, pos-start)
			}
			continue
		}
		q := pos
		if r == ' ' {
			q++
		}
		// llama.cpp tests the character after a space but accepts a lone space at the
		// end of the piece here too; either way that space becomes a piece of its own.
		if p.other(q) || (r == ' ' && q == len(p)) {
			for pos = q; p.other(pos); pos++ {
			}
			for r := p.at(pos); r == '\r' || r == '\n'; r = p.at(pos) {
				pos++
			}
			out = append(out, pos-start)
			continue
		}
		n, lastNewline := p.spaceRun(pos)
		switch {
		case lastNewline > 0: // \s*[\r\n]+
			pos = lastNewline
		case n > 1 && pos+n < len(p):
			pos += n - 1
		case n > 0:
			pos += n
		default:
			pos++
		}
		out = append(out, pos-start)
	}
	return out
}

// splitQwen2 matches Qwen2's pattern
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// llama.cpp runs it through std::regex, so this follows the pattern itself (leftmost
// alternative first, greedy with backtracking) and not the Llama 3 scanner.
func splitQwen2(c []rune, out []int) []int {
	p := piece(c)
	for pos := 0; pos < len(p); {
		out = append(out, qwen2Match(p, pos))
		pos += out[len(out)-1]
	}
	return out
}

// qwen2Match returns the length of the match at pos; every character starts one.
func qwen2Match(p piece, pos int) int {
	r := p[pos]
	if r == '\'' && pos+1 < len(p) {
		r1 := p[pos+1] | 0x20 // ASCII case folding: [sS] and friends
		switch r1 {
		case 's', 't', 'm', 'd':
			return 2
		case 'r', 'v', 'l':
			if pos+2 < len(p) {
				r2 := p[pos+2] | 0x20
				if (r1 == 'r' && r2 == 'e') || (r1 == 'v' && r2 == 'e') || (r1 == 'l' && r2 == 'l') {
					return 3
				}
			}
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if r != '\r' && r != '\n' && !isLetter(r) && !isNumber(r) && p.letter(pos+1) {
		end := pos + 1
		for p.letter(end) {
			end++
		}
		return end - pos
	}
	if isLetter(r) {
		end := pos
		for p.letter(end) {
			end++
		}
		return end - pos
	}
	if isNumber(r) { // \p{N}
		return 1
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	q := pos
	if r == ' ' && p.other(pos+1) {
		q++
	}
	if p.other(q) {
		end := q
		for p.other(end) {
			end++
		}
		for r := p.at(end); r == '\r' || r == '\n'; r = p.at(end) {
			end++
		}
		return end - pos
	}
	n, lastNewline := p.spaceRun(pos)
	switch {
	case lastNewline > 0: // \s*[\r\n]+
		return lastNewline - pos
	case pos+n == len(p): // \s+(?!\S) at the end
		return n
	case n > 1: // \s+(?!\S), backing off one space
		return n - 1
	}
	return n // \s+
}

// splitMatches cuts c at the leftmost matches of a pattern as std::regex_iterator finds
// them: each match is a piece, and so is the text between two matches.
func splitMatches(c []rune, out []int, match func(p piece, pos int) int) []int {
	p := piece(c)
	gap := 0
	for pos := 0; pos < len(p); {
		n := match(p, pos)
		if n == 0 {
			pos++
			continue
		}
		if pos > gap {
			out = append(out, pos-gap)
		}
		out = append(out, n)
		pos += n
		gap = pos
	}
	if len(p) > gap {
		out = append(out, len(p)-gap)
	}
	return out
}

// splitEachNumber is the pattern \p{N}.
func splitEachNumber(c []rune, out []int) []int {
	return splitMatches(c, out, func(p piece, pos int) int {
		if isNumber(p[pos]) {
			return 1
		}
		return 0
	})
}

// splitNumberRuns is the pattern \p{N}+.
func splitNumberRuns(c []rune, out []int) []int {
	return splitMatches(c, out, func(p piece, pos int) int {
		end := pos
		for p.number(end) {
			end++
		}
		return end - pos
	})
}

// splitDigitTriples is the pattern [0-9][0-9][0-9].
func splitDigitTriples(c []rune, out []int) []int {
	return splitMatches(c, out, func(p piece, pos int) int {
		for i := 0; i < 3; i++ {
			if r := p.at(pos + i); r < '0' || r > '9' {
				return 0
			}
		}
		return 3
	})
}

// splitPunctuationRuns is the pattern [\p{P}\$\+<=>\^~\|]+.
func splitPunctuationRuns(c []rune, out []int) []int {
	punct := func(r rune) bool {
		switch r {
		case '$', '+', '<', '=', '>', '^', '~', '|':
			return true
		}
		return unicode.IsPunct(r)
	}
	return splitMatches(c, out, func(p piece, pos int) int {
		end := pos
		for end < len(p) && punct(p[end]) {
			end++
		}
		return end - pos
	})
}
