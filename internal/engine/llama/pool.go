package llama

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// pool spreads loops over a fixed number of goroutines. Each run starts its goroutines and
// waits for them: a forward pass makes a few hundred runs, so the start costs (about a
// microsecond each) are far below the work they split. A pool is used by one forward pass at a
// time; run must not be called concurrently.
type pool struct {
	threads int
	scratch [][]float32 // one buffer per goroutine, for decoded weight rows and such
}

func newPool(threads, scratchLen int) *pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &pool{threads: threads, scratch: make([][]float32, threads)}
	for i := range p.scratch {
		p.scratch[i] = make([]float32, scratchLen)
	}
	return p
}

// run calls fn on consecutive ranges [lo, hi) that cover [0, n), about grain long (the last
// may be shorter), from up to p.threads goroutines. Ranges are handed out in order as
// goroutines free up, which balances uneven work such as causal attention rows.
func (p *pool) run(n, grain int, fn func(lo, hi int, scratch []float32)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	// Fewer, larger ranges when there are many per goroutine keeps the hand-out cheap.
	if chunks > 8*p.threads {
		grain = (n + 8*p.threads - 1) / (8 * p.threads)
		chunks = (n + grain - 1) / grain
	}
	workers := min(p.threads, chunks)
	if workers == 1 {
		fn(0, n, p.scratch[0])
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func(scratch []float32) {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			lo := c * grain
			fn(lo, min(lo+grain, n), scratch)
		}
	}
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(p.scratch[w])
		}()
	}
	work(p.scratch[0])
	wg.Wait()
}
