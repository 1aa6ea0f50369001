package llama

import (
	"runtime"
	"sync"

	"github.com/neovratz/neovratz/internal/kernels"
)

// pool runs the forward pass's parallel loops on a kernels.Pool (whose worker goroutines live
// as long as the Runner), handing each chunk of work a scratch buffer.
type pool struct {
	kp      *kernels.Pool
	threads int
	scratch sync.Pool // *[]float32 of scratchLen
}

func newPool(threads, scratchLen int) *pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &pool{kp: kernels.NewPool(threads), threads: threads}
	p.scratch.New = func() any {
		s := make([]float32, scratchLen)
		return &s
	}
	return p
}

// run calls fn on ranges [lo, hi) covering [0, n), about grain long, from the pool's threads.
func (p *pool) run(n, grain int, fn func(lo, hi int, scratch []float32)) {
	if n <= 0 {
		return
	}
	p.kp.Run(n, grain, func(lo, hi int) {
		s := p.scratch.Get().(*[]float32)
		fn(lo, hi, *s)
		p.scratch.Put(s)
	})
}

func (p *pool) close() { p.kp.Close() }
