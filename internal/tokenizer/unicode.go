package tokenizer

import "unicode"

// decodeCodepoints splits s into code points the way llama.cpp does: a lead byte and
// the continuation bytes it announces make one code point (overlong forms and
// surrogates are accepted, not checked), and each byte that cannot start or complete a
// sequence becomes U+FFFD.
func decodeCodepoints(s string) []rune {
	out := make([]rune, 0, len(s))
	cont := func(i int) bool { return i < len(s) && s[i]&0xC0 == 0x80 }
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b < 0x80:
			out = append(out, rune(b))
			i++
		case b&0xE0 == 0xC0 && cont(i+1):
			out = append(out, rune(b&0x1F)<<6|rune(s[i+1]&0x3F))
			i += 2
		case b&0xF0 == 0xE0 && cont(i+1) && cont(i+2):
			out = append(out, rune(b&0x0F)<<12|rune(s[i+1]&0x3F)<<6|rune(s[i+2]&0x3F))
			i += 3
		case b&0xF8 == 0xF0 && cont(i+1) && cont(i+2) && cont(i+3):
			r := rune(b&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
			if r > unicode.MaxRune {
				// llama.cpp cannot encode these back and gives up; keep going instead.
				r = unicode.ReplacementChar
			}
			out = append(out, r)
			i += 4
		default:
			out = append(out, unicode.ReplacementChar)
			i++
		}
	}
	return out
}

// appendCodepoint appends the UTF-8 form of r without the validity checks of
// utf8.AppendRune, so that surrogates decoded by decodeCodepoints survive as llama.cpp
// keeps them.
func appendCodepoint(b []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
	return append(b, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
}

// Character classes of the pre-tokenizers: \p{L}, \p{N} and \s. llama.cpp's \s is the
// Unicode White_Space property, for its hand-written splitters and (through its
// "collapsed" text) for its std::regex ones alike.
func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }
func isSpace(r rune) bool {
	if r < 0x80 {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.Is(unicode.White_Space, r)
}

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// GPT-2's byte-level alphabet: every byte maps to a printable code point, so that BPE
// works on text without spaces or control characters.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}
