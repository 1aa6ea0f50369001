package tokenizer

import "fmt"

// symbol is a run of bytes of the text being merged, linked to its neighbours. A symbol
// merged into its left neighbour keeps n == 0.
type symbol struct {
	start, n   int
	prev, next int
}

// queue is a binary heap ordered by less.
type queue[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (q *queue[T]) push(x T) {
	q.items = append(q.items, x)
	for i := len(q.items) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(q.items[i], q.items[parent]) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
}

func (q *queue[T]) pop() T {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(q.items[l], q.items[m]) {
			m = l
		}
		if r < last && q.less(q.items[r], q.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top
}

// spmBigram is a candidate merge of two adjacent symbols into a token of the given score.
type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// spmSession tokenizes one fragment of text with SentencePiece's BPE: starting from
// single characters, it repeatedly merges the adjacent pair whose concatenation is the
// token with the highest score (the leftmost pair on ties).
type spmSession struct {
	t        *Tokenizer
	text     string
	symbols  []symbol
	queue    queue[spmBigram]
	revMerge map[string][2]int
}

// encodeSPM appends the tokens of text, whose spaces are already escaped to "▁".
func (t *Tokenizer) encodeSPM(text string, out []int32) []int32 {
	s := spmSession{t: t, text: text, revMerge: map[string][2]int{}}
	s.queue.less = func(a, b spmBigram) bool {
		return a.score > b.score || (a.score == b.score && a.left < b.left)
	}
	// Characters by their lead byte, as llama.cpp cuts them (invalid UTF-8 included).
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		i := len(s.symbols)
		next := i + 1
		if off+n == len(text) {
			next = -1
		}
		s.symbols = append(s.symbols, symbol{start: off, n: n, prev: i - 1, next: next})
		off += n
	}
	for i := 1; i < len(s.symbols); i++ {
		s.tryAdd(i-1, i)
	}
	for len(s.queue.items) > 0 {
		b := s.queue.pop()
		left, right := &s.symbols[b.left], &s.symbols[b.right]
		// Skip candidates that an earlier merge made stale.
		if left.n == 0 || right.n == 0 || left.n+right.n != b.size {
			continue
		}
		left.n += right.n
		right.n = 0
		left.next = right.next
		if right.next >= 0 {
			s.symbols[right.next].prev = b.left
		}
		s.tryAdd(left.prev, b.left)
		s.tryAdd(b.left, left.next)
	}
	if len(s.symbols) == 0 {
		return out
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		out = s.resegment(i, 0, out)
	}
	return out
}

func (s *spmSession) tryAdd(left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l := s.symbols[left]
	text := s.text[l.start : l.start+l.n+s.symbols[right].n]
	id, ok := s.t.ids[text]
	if !ok {
		return
	}
	s.queue.push(spmBigram{left: left, right: right, score: s.t.scores[id], size: len(text)})
	s.revMerge[text] = [2]int{left, right}
}

// resegment emits symbol i as a token, or as the two symbols it was merged from, or as
// byte tokens when neither works. (Merges only ever form tokens, so the middle case is
// llama.cpp's inheritance from SentencePiece; depth guards against a cycle in it.)
func (s *spmSession) resegment(i, depth int, out []int32) []int32 {
	sym := s.symbols[i]
	text := s.text[sym.start : sym.start+sym.n]
	if id, ok := s.t.ids[text]; ok {
		return append(out, id)
	}
	if m, ok := s.revMerge[text]; ok && depth < len(s.symbols) && s.symbols[m[0]] != sym {
		out = s.resegment(m[0], depth+1, out)
		return s.resegment(m[1], depth+1, out)
	}
	for i := 0; i < len(text); i++ {
		if id := s.t.byteIDs[text[i]]; id >= 0 {
			out = append(out, id)
		}
	}
	return out
}

// byteToken returns the SPM byte-fallback token <0xXX> of b, the token spelled as the
// byte itself, or (where llama.cpp would fail) the unknown token; -1 when none exists.
func (t *Tokenizer) byteToken(b byte) int32 {
	if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
		return id
	}
	if id, ok := t.ids[string([]byte{b})]; ok {
		return id
	}
	return t.unk
}

func (t *Tokenizer) buildByteTokens() {
	for b := range t.byteIDs {
		t.byteIDs[b] = t.byteToken(byte(b))
	}
}

// utf8Len is the length of a UTF-8 sequence by its first byte, reading continuation
// and invalid bytes as one-byte characters.
func utf8Len(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}
