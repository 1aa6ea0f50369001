package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// renderPiece is llama.cpp's token_to_piece for a token, special tokens included.
func (t *Tokenizer) renderPiece(id int32) string {
	text, a := t.tokens[id], t.attrs[id]
	switch {
	case a&(attrUnknown|attrControl|attrUserDefined) != 0:
		return text
	case a&attrNormal != 0:
		if t.kind == kindSPM {
			return strings.ReplaceAll(text, "▁", " ")
		}
		return decodeByteLevel(text)
	case a&attrByte != 0:
		// <0xXX>; llama.cpp reads the two hex digits and nothing else.
		if len(text) >= 5 {
			if b, err := strconv.ParseUint(text[3:5], 16, 8); err == nil {
				return string([]byte{byte(b)})
			}
		}
		return "\x00"
	}
	return "" // undefined and unused tokens render as nothing
}

// decodeByteLevel maps a token in the GPT-2 byte alphabet back to its bytes. A code
// point outside the alphabet is written out as llama.cpp does, as a visible marker.
func decodeByteLevel(text string) string {
	var b []byte
	for _, r := range decodeCodepoints(text) {
		if c, ok := runeToByte[r]; ok {
			b = append(b, c)
			continue
		}
		b = append(b, "[UNK_BYTE_0x"...)
		for _, c := range appendCodepoint(nil, r) {
			b = fmt.Appendf(b, "%02x", c)
		}
		b = append(b, text...)
		b = append(b, ']')
	}
	return string(b)
}

// Piece returns the text of one token. Control and unknown tokens render as "" unless
// special is set.
func (t *Tokenizer) Piece(id int32, special bool) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	if !special && t.attrs[id]&(attrUnknown|attrControl) != 0 {
		return ""
	}
	return t.pieces[id]
}

// DecodeOptions control Detokenize.
type DecodeOptions struct {
	// RemoveSpecial drops a leading BOS and a trailing EOS where the vocabulary adds them.
	RemoveSpecial bool
	// UnparseSpecial renders control and unknown tokens as their text instead of "".
	UnparseSpecial bool
}

// Decode returns the text of ids, rendering control tokens as nothing. It is
// Detokenize with the zero options, which is llama.cpp's llama_detokenize with
// remove_special and unparse_special off.
func (t *Tokenizer) Decode(ids []int32) string {
	return t.Detokenize(ids, DecodeOptions{})
}

// Detokenize returns the text of ids as llama.cpp's llama_detokenize does. Where the
// vocabulary adds a space prefix, the first token loses one leading space, unless the
// sequence starts with BOS and RemoveSpecial drops it (then the space stays, as in
// llama.cpp). Vocabularies with clean_up_tokenization_spaces (most gpt2 ones, not
// Qwen2 or SmolLM) then drop spaces before . , ! ? and some contractions.
func (t *Tokenizer) Detokenize(ids []int32, opts DecodeOptions) string {
	removeSpace := t.addSpacePrefix
	if opts.RemoveSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if opts.RemoveSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var b []byte
	for _, id := range ids {
		p := t.Piece(id, opts.UnparseSpecial)
		if removeSpace && strings.HasPrefix(p, " ") {
			p = p[1:]
		}
		removeSpace = false
		b = append(b, p...)
	}
	if t.kind == kindBPE && t.pre.cleanSpaces {
		b = cleanSpaces(b)
	}
	return string(b)
}

// cleanSpaces is the clean_up_tokenization_spaces pass of llama.cpp, three sweeps over
// the bytes in place.
func cleanSpaces(text []byte) []byte {
	if len(text) == 0 {
		return text
	}
	// " ?", " !", " .", " ," lose the space.
	n := 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			n--
		}
		text[n] = x
		n++
	}
	text = text[:n]
	// " ' " becomes "'". The space after the apostrophe is skipped, and the byte after
	// it no longer counts as preceded by a space.
	n = 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if x == '\'' && i+1 < len(text) && text[i-1] == ' ' && text[i+1] == ' ' {
			n--
			i++
			text[i] = 0
		}
		text[n] = x
		n++
	}
	text = text[:n]
	// " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
	n = 1
	for i := 1; i < len(text); i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < len(text) {
			switch x1 := text[i+1]; {
			case x1 == 's' || x1 == 'm':
				n--
			case i+2 < len(text) && ((x1 == 'r' || x1 == 'v') && text[i+2] == 'e'):
				n--
			}
		}
		text[n] = x
		n++
	}
	return text[:n]
}

// Decoder turns a stream of token ids into text, returning only whole UTF-8
// characters: the bytes of a character split across tokens (byte-fallback tokens such
// as <0xE2><0x82><0xAC>, or byte-level BPE pieces) are held back until it is complete.
// Control tokens render as nothing and no space is stripped, as in llama-server's
// streamed output. A Decoder is not safe for concurrent use.
type Decoder struct {
	t   *Tokenizer
	buf []byte
}

// NewDecoder returns a streaming decoder.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t} }

// Push adds one token and returns the text that is now complete.
func (d *Decoder) Push(id int32) string {
	d.buf = append(d.buf, d.t.Piece(id, false)...)
	n := completePrefix(d.buf)
	out := string(d.buf[:n])
	d.buf = append(d.buf[:0], d.buf[n:]...)
	return out
}

// Flush returns whatever is held back (an incomplete character, as raw bytes) and
// resets the decoder.
func (d *Decoder) Flush() string {
	out := string(d.buf)
	d.buf = d.buf[:0]
	return out
}

// completePrefix returns the length of b without a trailing incomplete UTF-8 sequence.
// Invalid bytes count as complete: no later byte can fix them.
func completePrefix(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
