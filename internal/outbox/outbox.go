// Package outbox is a small durable store of pending work that any of several processes may
// take up: the API keeps the end-of-job work of async jobs here (webhook deliveries, token
// charges), so that work a replica accepted survives that replica's stop.
//
// An item is an id, an opaque payload and a due time. Claim hands out the items that are due
// and makes each due again after a lease (a visibility timeout, as SQS has): the claimer
// finishes an item by deleting it or by updating it with its next due time; a claimer that
// stops before either leaves the item to whoever claims it once the lease has passed. Work done
// this way happens at least once.
//
// Three stores: Redis (shared by API replicas), SQLite (the embedded server) and memory (one
// process, nothing durable: tests and embedding).
package outbox

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Item is one piece of pending work.
type Item struct {
	ID   string
	Data []byte
}

// Store is what every implementation provides. Times are the caller's clock, so that every
// process sharing a store must agree on it only roughly (to within a lease).
type Store interface {
	// Put stores item, due at due, replacing an item with the same id.
	Put(ctx context.Context, item Item, due time.Time) error
	// Claim takes up to n of the items due at now, those due earliest, makes each due again
	// at until and returns them, in no particular order.
	Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]Item, error)
	// Update replaces the item with item's id and makes it due at due, and reports whether the
	// item still existed; an item deleted meanwhile (by a claimer whose lease had passed) is
	// not brought back.
	Update(ctx context.Context, item Item, due time.Time) (bool, error)
	// Delete removes the item with id; deleting an absent item is no error.
	Delete(ctx context.Context, id string) error
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
	_ Store = (*SQLite)(nil)
)

// Memory is a Store in one process's memory: nothing survives the process.
type Memory struct {
	mu    sync.Mutex
	items map[string]memItem
	seq   uint64
}

type memItem struct {
	data []byte
	due  time.Time
	seq  uint64 // insertion order, to break ties of due
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{items: map[string]memItem{}} }

// Put implements Store.
func (m *Memory) Put(ctx context.Context, item Item, due time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	m.items[item.ID] = memItem{data: clone(item.Data), due: due, seq: m.seq}
	return nil
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type cand struct {
		id string
		it memItem
	}
	var due []cand
	for id, it := range m.items {
		if !it.due.After(now) {
			due = append(due, cand{id, it})
		}
	}
	slices.SortFunc(due, func(a, b cand) int {
		if c := a.it.due.Compare(b.it.due); c != 0 {
			return c
		}
		return cmp.Compare(a.it.seq, b.it.seq)
	})
	var out []Item
	for _, c := range due {
		if len(out) == n {
			break
		}
		c.it.due = until
		m.items[c.id] = c.it
		out = append(out, Item{ID: c.id, Data: clone(c.it.data)})
	}
	return out, nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, item Item, due time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[item.ID]
	if !ok {
		return false, nil
	}
	it.data, it.due = clone(item.Data), due
	m.items[item.ID] = it
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, id)
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
