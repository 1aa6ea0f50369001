package main

import "sync"

// interrupts routes Ctrl-C (SIGINT). By default main cancels the run's context on the first
// one, as on SIGTERM. A command for which Ctrl-C means less than "stop" takes it over while it
// needs to: run's interactive chat, where Ctrl-C stops the answer being written and returns to
// the prompt. The zero value routes nothing.
type interrupts struct {
	mu sync.Mutex
	to chan struct{} // the taker's; nil when none
}

// take routes SIGINT to the returned channel, instead of canceling the context, until release
// is called. Ctrl-Cs that come faster than the taker receives them arrive as one.
func (in *interrupts) take() (c <-chan struct{}, release func()) {
	ch := make(chan struct{}, 1)
	in.mu.Lock()
	in.to = ch
	in.mu.Unlock()
	return ch, func() {
		in.mu.Lock()
		if in.to == ch {
			in.to = nil
		}
		in.mu.Unlock()
	}
}

// deliver hands one SIGINT to the command that took them over, and reports whether one had.
func (in *interrupts) deliver() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.to == nil {
		return false
	}
	select {
	case in.to <- struct{}{}:
	default: // one is waiting already
	}
	return true
}
