package sqlitebroker

import "sync"

// notifier wakes goroutines that wait for a change of something named by a key: a model's
// queue (reservers) or a job's event log (readers). This is what lets Reserve and Events block
// without polling the database: every commit that makes a job available, or appends an event,
// signals its key once it is visible to readers.
//
// A waiter subscribes before it looks at the database and keeps its subscription while it
// looks, so a signal that lands between the look and the wait is not lost: it stays in the
// waiter's one-slot channel and the next wait returns at once. Signals coalesce; a woken waiter
// always looks again, so a spurious wake-up costs one query and nothing else.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
}

// waiter is one subscription to one or more keys.
type waiter struct {
	c    chan struct{} // capacity 1: one pending wake-up is as good as many
	keys []string
}

// subscribe returns a waiter woken by every signal of any of keys until it unsubscribes.
func (n *notifier) subscribe(keys ...string) *waiter {
	w := &waiter{c: make(chan struct{}, 1), keys: keys}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waiters == nil {
		n.waiters = make(map[string]map[*waiter]struct{})
	}
	for _, k := range keys {
		set := n.waiters[k]
		if set == nil {
			set = make(map[*waiter]struct{})
			n.waiters[k] = set
		}
		set[w] = struct{}{}
	}
	return w
}

// unsubscribe stops wake-ups of w. The map is kept small: a key without waiters is removed.
func (n *notifier) unsubscribe(w *waiter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range w.keys {
		set := n.waiters[k]
		delete(set, w)
		if len(set) == 0 {
			delete(n.waiters, k)
		}
	}
}

// signal wakes every waiter of every key. It never blocks.
func (n *notifier) signal(keys ...string) {
	if len(keys) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range keys {
		for w := range n.waiters[k] {
			select {
			case w.c <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}
