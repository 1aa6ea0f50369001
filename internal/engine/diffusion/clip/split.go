package clip

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// specials are the token strings recognised inside a prompt.
var specials = []struct {
	text string
	id   int
}{{"<|startoftext|>", BOS}, {"<|endoftext|>", EOS}}

// normalize collapses every run of whitespace to one space, trims the ends
// and lowercases, as CLIP's whitespace_clean and lower do. (CLIP also runs
// ftfy and HTML unescaping; stable-diffusion.cpp does not, and the images
// are checked against it.)
func normalize(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// Encode returns the BPE tokens of text, without BOS, EOS or padding. The
// literal strings <|startoftext|> and <|endoftext|> become their tokens.
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	s := normalize(text)
	for s != "" {
		// The next special, if any: text before it is split into words.
		at, sp := len(s), -1
		for i, x := range specials {
			if j := strings.Index(s, x.text); j >= 0 && j < at {
				at, sp = j, i
			}
		}
		ids = t.encodeWords(ids, s[:at])
		if sp < 0 {
			break
		}
		ids = append(ids, specials[sp].id)
		s = s[at+len(specials[sp].text):]
	}
	return ids
}

// encodeWords pre-splits s as CLIP's pattern does and appends each word's
// tokens. The pattern, tried at each position in this order:
//
//	's|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// with whitespace between matches skipped. A scanner does the same as the
// regular expression without its cost.
func (t *Tokenizer) encodeWords(dst []int, s string) []int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += n
			continue
		case r == '\'':
			if c := contraction(s[i+1:]); c > 0 {
				dst = t.bpe(dst, s[i:i+1+c])
				i += 1 + c
				continue
			}
		case unicode.IsLetter(r):
			j := i + n
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r2) {
					break
				}
				j += n2
			}
			dst = t.bpe(dst, s[i:j])
			i = j
			continue
		case unicode.IsNumber(r):
			dst = t.bpe(dst, s[i:i+n])
			i += n
			continue
		}
		// A run of anything but spaces, letters and numbers (an
		// apostrophe not starting a contraction included).
		j := i + n
		for j < len(s) {
			r2, n2 := utf8.DecodeRuneInString(s[j:])
			if unicode.IsSpace(r2) || unicode.IsLetter(r2) || unicode.IsNumber(r2) {
				break
			}
			j += n2
		}
		dst = t.bpe(dst, s[i:j])
		i = j
	}
	return dst
}

// contraction returns the length of the contraction suffix ('s, 't, 're,
// 've, 'm, 'll, 'd) that s (following an apostrophe) starts with, or 0.
func contraction(s string) int {
	for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
		if strings.HasPrefix(s, c) {
			return len(c)
		}
	}
	return 0
}
