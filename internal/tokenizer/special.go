package tokenizer

import "strings"

// EncodeOptions control Encode.
type EncodeOptions struct {
	// AddSpecial adds BOS and EOS as the vocabulary's add_bos_token and add_eos_token
	// flags ask.
	AddSpecial bool
	// ParseSpecial recognises the text of control tokens (<|im_start|>, <s>, …) in the
	// input and emits them as single tokens. User-defined tokens are always recognised.
	ParseSpecial bool
}

// fragment is a part of the input: a special token (id >= 0) or raw text.
type fragment struct {
	id         int32
	start, end int
}

// partition splits text around the special tokens found in it, trying the longest
// special tokens first, as llama.cpp's tokenizer_st_partition does.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{id: -1, start: 0, end: len(text)}}
	var next []fragment
	for _, id := range t.special {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		tok := t.tokens[id]
		if !strings.Contains(text, tok) {
			continue
		}
		next = next[:0]
		for _, f := range frags {
			if f.id >= 0 {
				next = append(next, f)
				continue
			}
			for {
				k := strings.Index(text[f.start:f.end], tok)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{id: -1, start: f.start, end: f.start + k})
				}
				next = append(next, fragment{id: id})
				f.start += k + len(tok)
			}
			if f.start < f.end {
				next = append(next, f)
			}
		}
		frags, next = next, frags
	}
	return frags
}

// Encode returns the token ids of text.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int32 {
	frags := t.partition(text, opts.ParseSpecial)
	var out []int32
	if opts.AddSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	switch t.kind {
	case kindSPM:
		// A space goes before the first text and before text that follows a special
		// token, as llama.cpp does (SentencePiece's add_dummy_prefix per fragment).
		prevSpecial := true
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				prevSpecial = true
				continue
			}
			s := text[f.start:f.end]
			if t.addSpacePrefix && prevSpecial {
				s = " " + s
			}
			out = t.encodeSPM(strings.ReplaceAll(s, " ", "▁"), out)
			prevSpecial = false
		}
	case kindBPE:
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				continue
			}
			out = t.encodeBPE(text[f.start:f.end], out)
		}
	}
	if opts.AddSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out
}
