package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A Pool runs the parallel kernels on a fixed set of worker goroutines that
// live as long as the pool, so a parallel call costs a wake-up per worker
// rather than a goroutine. The calling goroutine works too: a pool of n
// threads has n-1 workers. Work is handed out in chunks from an atomic
// counter, so a thread the OS delays takes fewer chunks instead of holding
// everyone up.
//
// One parallel operation runs at a time; concurrent calls wait their turn.
// A nil *Pool, or one of 1 thread, runs everything on the caller.
type Pool struct {
	threads int
	mu      sync.Mutex      // held for a whole parallel operation
	wake    []chan struct{} // one per worker, buffered 1
	done    chan any        // workers report completion (or a panic)
	exited  sync.WaitGroup

	// The operation in progress, set under mu before the workers wake.
	task  task
	n     int
	chunk int
	next  atomic.Int64
	mm    matmulTask // MatMul's arguments, kept here so a call allocates nothing
	gm    groupTask  // the same on the groupGEMM path
	// gemmBufs are the groupGEMM path's buffers, used under mu.
	gemmBufs gemmBuffers
}

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
	p := &Pool{
		threads: threads,
		wake:    make([]chan struct{}, threads-1),
		done:    make(chan any, threads-1),
	}
	p.exited.Add(threads - 1)
	for i := range p.wake {
		p.wake[i] = make(chan struct{}, 1)
		go p.worker(p.wake[i])
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
	for _, w := range p.wake {
		close(w)
	}
	p.wake = nil
	p.threads = 1
	p.exited.Wait()
}

func (p *Pool) worker(wake chan struct{}) {
	defer p.exited.Done()
	for range wake {
		p.done <- p.work()
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

// runLocked runs t with p.mu held.
func (p *Pool) runLocked(n, chunk int, t task) {
	if len(p.wake) == 0 {
		panic("kernels: Pool used after Close")
	}
	p.task, p.n, p.chunk = t, n, chunk
	p.next.Store(0)
	// Wake only as many workers as there are chunks beyond the caller's first.
	helpers := min(len(p.wake), (n+chunk-1)/chunk-1)
	for _, w := range p.wake[:helpers] {
		w <- struct{}{}
	}
	mine := p.work()
	var theirs any
	for range helpers {
		if v := <-p.done; v != nil && theirs == nil {
			theirs = v
		}
	}
	p.task = nil
	if mine != nil {
		panic(mine)
	}
	if theirs != nil {
		panic(fmt.Sprintf("kernels: worker panicked: %v", theirs))
	}
}
