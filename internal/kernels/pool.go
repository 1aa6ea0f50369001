package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Pool runs the parallel kernels on a fixed set of worker goroutines that
// live as long as the pool, so a parallel call costs a wake-up per worker
// rather than a goroutine. The calling goroutine works too: a pool of n
// threads has n-1 workers. Work is handed out in chunks from an atomic
// counter, so a thread the OS delays takes fewer chunks instead of holding
// everyone up.
//
// A decode step is a few hundred parallel operations of 50-200 µs each, a
// few microseconds apart. Waking a parked goroutine costs about as much as
// such a gap (a futex and a trip through the scheduler), so a worker that
// finishes an operation spins for a while (spinTime) watching for the next
// one before it parks, and the caller spins while the workers finish
// theirs: the same trade llama.cpp's thread pool makes.
//
// One parallel operation runs at a time; concurrent calls wait their turn.
// A nil *Pool, or one of 1 thread, runs everything on the caller.
type Pool struct {
	threads int
	mu      sync.Mutex // held for a whole parallel operation
	workers []*poolWorker
	exited  sync.WaitGroup

	// The operation in progress, set under mu before gen changes.
	task    task
	n       int
	chunk   int
	next    atomic.Int64
	gen     atomic.Uint64 // counts operations: a worker joins each new one
	pending atomic.Int32  // workers still in the current operation
	// waiting is the operation whose caller has stopped spinning for the
	// workers and sleeps on done, which the last worker out of that very
	// operation then signals (0: none). A number, not a flag, so that a
	// worker late out of one operation cannot wake the caller of the next.
	waiting atomic.Uint64
	done    chan struct{}
	mp      manyTask // MatMul's plan, kept here so a call allocates nothing
	// gemmBufs are the groupGEMM path's buffers, used under mu.
	gemmBufs gemmBuffers
}

// poolWorker is a worker's wake-up line: parked says it sleeps on wake (a
// caller that swaps parked to false sends it one token), panicked what its
// part of the last operation panicked with.
type poolWorker struct {
	wake     chan struct{}
	parked   atomic.Bool
	panicked any
}

// testHookCountedOut, set by tests before they make a pool, runs in its workers right after
// each counts itself out of an operation: a moment the OS may stretch at any time.
var testHookCountedOut func()

// testHookPublished, set by tests before they make a pool, runs in the caller between
// publishing an operation and waking the parked workers: another moment the OS may stretch.
var testHookPublished func()

// spinTime is how long a worker watches for the next operation before it
// parks, and the caller for the workers before it yields its thread.
const spinTime = 50 * time.Microsecond

// task is a parallel operation over the index range [0, n).
type task interface {
	run(lo, hi int)
}

// funcTask adapts a function to task.
type funcTask func(lo, hi int)

func (f funcTask) run(lo, hi int) { f(lo, hi) }

// NewPool starts a pool of threads threads (threads-1 workers); threads < 1
// means 1. Close stops the workers.
func NewPool(threads int) *Pool {
	threads = max(1, threads)
	p := &Pool{threads: threads, workers: make([]*poolWorker, threads-1), done: make(chan struct{}, 1)}
	p.exited.Add(threads - 1)
	for i := range p.workers {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers[i] = w
		go p.worker(w)
	}
	return p
}

// Threads returns the number of goroutines that run a parallel operation,
// the caller's included (1 for a nil pool).
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the workers and waits for them to exit. The pool must not be
// used after; Close on a nil pool does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		close(w.wake)
	}
	p.workers = nil
	p.threads = 1
	p.exited.Wait()
}

func (p *Pool) worker(w *poolWorker) {
	defer p.exited.Done()
	var seen uint64
	for {
		g, ok := p.await(w, seen)
		if !ok {
			return
		}
		seen = g
		w.panicked = p.work()
		last := p.pending.Add(-1) == 0
		if testHookCountedOut != nil {
			testHookCountedOut()
		}
		if last && p.waiting.CompareAndSwap(g, 0) {
			p.done <- struct{}{}
		}
	}
}

// await returns the number of an operation newer than seen, spinning for
// spinTime and then parked; false when the pool closes.
func (p *Pool) await(w *poolWorker, seen uint64) (uint64, bool) {
	for {
		start := time.Now()
		for i := 1; ; i++ {
			if g := p.gen.Load(); g != seen {
				return g, true
			}
			if i%256 == 0 && time.Since(start) > spinTime {
				break
			}
		}
		w.parked.Store(true)
		if g := p.gen.Load(); g != seen {
			if w.parked.CompareAndSwap(true, false) {
				return g, true
			}
			// A caller un-parked us first: its token is on the way.
			if _, ok := <-w.wake; !ok {
				return 0, false
			}
			return g, true
		}
		if _, ok := <-w.wake; !ok {
			return 0, false
		}
		// The caller of the operation we have just run may wake us: one the OS
		// delayed between publishing it and its wake-ups, long enough for us to
		// run our part and park. Only a newer operation counts; running this one
		// again would count us out of it twice.
		if g := p.gen.Load(); g != seen {
			return g, true
		}
	}
}

// work takes chunks of the current operation until none are left. It
// returns the value of a panic in the task, so that the caller can re-raise
// it rather than the program dying on a worker's stack.
func (p *Pool) work() (panicked any) {
	defer func() { panicked = recover() }()
	for {
		lo := int(p.next.Add(int64(p.chunk))) - p.chunk
		if lo >= p.n {
			return nil
		}
		p.task.run(lo, min(lo+p.chunk, p.n))
	}
}

// Run calls fn on chunks [lo, hi) covering [0, n), chunk indexes at a time
// (chunk < 1 picks a size that gives each thread several chunks), from the
// pool's threads, and returns when all have run. fn must be safe to call
// concurrently on disjoint ranges.
func (p *Pool) Run(n, chunk int, fn func(lo, hi int)) {
	p.run(n, chunk, funcTask(fn))
}

func (p *Pool) run(n, chunk int, t task) {
	if n <= 0 {
		return
	}
	threads := p.Threads()
	if chunk < 1 {
		// Four chunks per thread balance a busy machine's stragglers
		// against the cost of handing chunks out.
		chunk = max(1, (n+4*threads-1)/(4*threads))
	}
	if threads == 1 || chunk >= n {
		t.run(0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runLocked(n, chunk, t)
}

// awaitWorkers returns when every worker has left the current operation:
// spinning for spinTime, then asleep on done, so that a worker the OS has
// delayed gets the core it waits for.
func (p *Pool) awaitWorkers() {
	start := time.Now()
	for i := 1; p.pending.Load() != 0; i++ {
		if i%256 == 0 && time.Since(start) > spinTime {
			g := p.gen.Load()
			p.waiting.Store(g)
			if p.pending.Load() == 0 && p.waiting.CompareAndSwap(g, 0) {
				return // the last worker left before it could see waiting
			}
			<-p.done // the last worker took waiting back to 0 and signals
			return
		}
	}
}

// runLocked runs t with p.mu held.
func (p *Pool) runLocked(n, chunk int, t task) {
	if len(p.workers) == 0 {
		panic("kernels: Pool used after Close")
	}
	p.task, p.n, p.chunk = t, n, chunk
	p.next.Store(0)
	p.pending.Store(int32(len(p.workers)))
	p.gen.Add(1) // publishes the operation to the spinning workers
	if testHookPublished != nil {
		testHookPublished()
	}
	for _, w := range p.workers {
		if w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	mine := p.work()
	p.awaitWorkers()
	p.task = nil
	var theirs any
	for _, w := range p.workers {
		if w.panicked != nil && theirs == nil {
			theirs = w.panicked
		}
		w.panicked = nil
	}
	if mine != nil {
		panic(mine)
	}
	if theirs != nil {
		panic(fmt.Sprintf("kernels: worker panicked: %v", theirs))
	}
}
