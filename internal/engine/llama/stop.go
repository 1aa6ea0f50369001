package llama

import "strings"

// stopper finds stop strings in generated text that arrives piece by piece. It holds back the
// end of the text while it could still be the start of a stop string, so that text which turns
// out to be part of one is never sent.
type stopper struct {
	stops []string
	held  string
}

// push adds a piece and returns the text that is now safe to send, and whether a stop string
// was completed (the text then ends where the stop string began, and the rest is dropped).
func (s *stopper) push(piece string) (string, bool) {
	if len(s.stops) == 0 {
		return piece, false
	}
	text := s.held + piece
	cut := -1
	for _, st := range s.stops {
		if i := strings.Index(text, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		s.held = ""
		return text[:cut], true
	}
	// Hold the longest suffix that is a proper prefix of some stop string.
	keep := 0
	for _, st := range s.stops {
		for n := min(len(st)-1, len(text)); n > keep; n-- {
			if strings.HasSuffix(text, st[:n]) {
				keep = n
				break
			}
		}
	}
	s.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// flush returns the text held back, at the end of generation.
func (s *stopper) flush() string {
	h := s.held
	s.held = ""
	return h
}
