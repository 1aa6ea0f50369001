package tokenizer

import "unicode/utf8"

// bpeBigram is a candidate merge of two adjacent symbols with the rank of their merge.
type bpeBigram struct {
	left, right int
	rank        int32
	size        int
}

// encodeBPE appends the tokens of one fragment of text: it is pre-tokenized into words,
// and within each word the adjacent pair with the lowest merge rank (the leftmost on
// ties) is merged until no listed merge applies.
func (t *Tokenizer) encodeBPE(text string, out []int32) []int32 {
	q := queue[bpeBigram]{less: func(a, b bpeBigram) bool {
		return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
	}}
	var symbols []symbol
	for _, word := range t.pre.preTokenize(text) {
		if t.pre.ignoreMerges {
			if id, ok := t.ids[word]; ok {
				out = append(out, id)
				continue
			}
		}
		symbols = symbols[:0]
		for off := 0; off < len(word); {
			_, n := utf8.DecodeRuneInString(word[off:]) // words are valid UTF-8 here
			i := len(symbols)
			next := i + 1
			if off+n == len(word) {
				next = -1
			}
			symbols = append(symbols, symbol{start: off, n: n, prev: i - 1, next: next})
			off += n
		}
		add := func(left, right int) {
			if left < 0 || right < 0 {
				return
			}
			l, r := symbols[left], symbols[right]
			rank, ok := t.ranks[[2]string{word[l.start : l.start+l.n], word[r.start : r.start+r.n]}]
			if ok {
				q.push(bpeBigram{left: left, right: right, rank: rank, size: l.n + r.n})
			}
		}
		for i := 1; i < len(symbols); i++ {
			add(i-1, i)
		}
		for len(q.items) > 0 {
			b := q.pop()
			left, right := &symbols[b.left], &symbols[b.right]
			// A symbol only grows by absorbing its right neighbour, so an unchanged
			// total size means the pair is still the one that was ranked.
			if left.n == 0 || right.n == 0 || left.n+right.n != b.size {
				continue
			}
			left.n += right.n
			right.n = 0
			left.next = right.next
			if right.next >= 0 {
				symbols[right.next].prev = b.left
			}
			add(left.prev, b.left)
			add(b.left, left.next)
		}
		for i := 0; i >= 0 && i < len(symbols); i = symbols[i].next {
			s := word[symbols[i].start : symbols[i].start+symbols[i].n]
			if id, ok := t.ids[s]; ok {
				out = append(out, id)
				continue
			}
			// No token for the symbol: llama.cpp looks up each of its bytes alone and
			// drops those that are not tokens either.
			for j := 0; j < len(s); j++ {
				if id, ok := t.ids[s[j:j+1]]; ok {
					out = append(out, id)
				}
			}
		}
	}
	return out
}
