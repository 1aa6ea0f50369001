package clip

import (
	"strconv"
	"strings"
)

// Emphasis multipliers of AUTOMATIC1111: (text) and [text].
const (
	roundMultiplier  float32 = 1.1
	squareMultiplier float32 = 1 / 1.1
)

// Segment is a run of prompt text with one emphasis weight, or a BREAK.
type Segment struct {
	Text   string
	Weight float32
	// Break marks a BREAK keyword: the current 75-token chunk ends here.
	Break bool
}

// ParseEmphasis splits a prompt into weighted segments as AUTOMATIC1111's
// parse_prompt_attention does:
//
//	(text)       weight ×1.1        [text]      weight ÷1.1
//	(text:1.3)   weight ×1.3        \( \) \[ \] \\   literal characters
//	BREAK        ends the chunk (a whole word, in capitals)
//
// Brackets nest and multiply; an unclosed one applies to the end of the
// prompt; a stray closing bracket is literal text. Neighbouring segments
// of equal weight are joined. Weights multiply in float32, as
// stable-diffusion.cpp computes them.
func ParseEmphasis(prompt string) []Segment {
	var res []Segment
	var round, square []int
	mul := func(from int, m float32) {
		for i := from; i < len(res); i++ {
			// A BREAK inside brackets stays a BREAK (AUTOMATIC1111 would
			// scale its -1 marker and then encode the word "break").
			if !res[i].Break {
				res[i].Weight *= m
			}
		}
	}
	text := func(s string) {
		for i, part := range splitBreak(s) {
			if i > 0 {
				res = append(res, Segment{Text: "BREAK", Weight: -1, Break: true})
			}
			res = append(res, Segment{Text: part, Weight: 1})
		}
	}
	s := prompt
	for s != "" {
		switch c := s[0]; c {
		case '\\':
			// An escaped bracket or backslash is that character; a lone
			// backslash matches the pattern's `\\` alternative and, having
			// nothing after it, disappears (as in AUTOMATIC1111).
			if len(s) > 1 && strings.IndexByte(`()[]\`, s[1]) >= 0 {
				res = append(res, Segment{Text: s[1:2], Weight: 1})
				s = s[2:]
			} else {
				res = append(res, Segment{Text: "", Weight: 1})
				s = s[1:]
			}
		case '(':
			round = append(round, len(res))
			s = s[1:]
		case '[':
			square = append(square, len(res))
			s = s[1:]
		case ')':
			if len(round) > 0 {
				mul(round[len(round)-1], roundMultiplier)
				round = round[:len(round)-1]
			} else {
				text(")")
			}
			s = s[1:]
		case ']':
			if len(square) > 0 {
				mul(square[len(square)-1], squareMultiplier)
				square = square[:len(square)-1]
			} else {
				text("]")
			}
			s = s[1:]
		case ':':
			w, n, ok := weightClose(s)
			switch {
			case ok && len(round) > 0:
				mul(round[len(round)-1], w)
				round = round[:len(round)-1]
				s = s[n:]
			case ok:
				text(s[:n]) // a weight with nothing open is text
				s = s[n:]
			default:
				text(":")
				s = s[1:]
			}
		default:
			n := strings.IndexAny(s, `\()[]:`)
			if n < 0 {
				n = len(s)
			}
			text(s[:n])
			s = s[n:]
		}
	}
	for _, p := range round {
		mul(p, roundMultiplier)
	}
	for _, p := range square {
		mul(p, squareMultiplier)
	}
	if len(res) == 0 {
		return []Segment{{Text: "", Weight: 1}}
	}
	out := res[:1]
	for _, seg := range res[1:] {
		last := &out[len(out)-1]
		if !seg.Break && !last.Break && seg.Weight == last.Weight {
			last.Text += seg.Text
			continue
		}
		out = append(out, seg)
	}
	return out
}

// weightClose matches `:\s*([+-]?[.\d]+)\s*\)` at the start of s, returning
// the weight and the match's length.
func weightClose(s string) (float32, int, bool) {
	i := 1
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	start := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := i
	for i < len(s) && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')) {
		i++
	}
	if i == digits {
		return 0, 0, false
	}
	num := s[start:i]
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != ')' {
		return 0, 0, false
	}
	w, err := strconv.ParseFloat(num, 32)
	if err != nil {
		return 0, 0, false // "1.2.3": not a number; the ':' is text
	}
	return float32(w), i + 1, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isWord(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// splitBreak splits s at each `\s*\bBREAK\b\s*`.
func splitBreak(s string) []string {
	var parts []string
	from := 0
	for i := 0; i+5 <= len(s); {
		j := strings.Index(s[i:], "BREAK")
		if j < 0 {
			break
		}
		j += i
		end := j + 5
		if (j > 0 && isWord(s[j-1])) || (end < len(s) && isWord(s[end])) {
			i = j + 1
			continue
		}
		a := j
		for a > from && isSpace(s[a-1]) {
			a--
		}
		for end < len(s) && isSpace(s[end]) {
			end++
		}
		parts = append(parts, s[from:a])
		from, i = end, end
	}
	return append(parts, s[from:])
}
