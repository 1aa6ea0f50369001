package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/gguf"
)

// TestPoolRunCoversRange checks that Run calls its function on every index
// exactly once, for pools of several sizes, ranges and chunk sizes.
func TestPoolRunCoversRange(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 2, 7, 100, 1000} {
			for _, chunk := range []int{0, 1, 3, 64, 5000} {
				hits := make([]atomic.Int32, n)
				p.Run(n, chunk, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("threads %d n %d chunk %d: index %d run %d times", threads, n, chunk, i, h)
					}
				}
			}
		}
		p.Close()
	}
}

// TestPoolNil checks that a nil pool runs everything on the caller.
func TestPoolNil(t *testing.T) {
	var p *Pool
	sum := 0
	p.Run(10, 3, func(lo, hi int) { sum += hi - lo })
	if sum != 10 || p.Threads() != 1 {
		t.Errorf("nil pool: covered %d of 10, %d threads", sum, p.Threads())
	}
	p.Close()
}

// TestPoolConcurrentCallers checks that parallel operations from several
// goroutines take turns and each completes whole.
func TestPoolConcurrentCallers(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				var sum atomic.Int64
				p.Run(257, 8, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						sum.Add(int64(i))
					}
				})
				if got := sum.Load(); got != 256*257/2 {
					t.Errorf("sum %d, want %d", got, 256*257/2)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestPoolPanic checks that a panic in a worker reaches the caller and
// leaves the pool usable.
func TestPoolPanic(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "boom") {
				t.Errorf("recovered %v, want the task's panic", r)
			}
		}()
		p.Run(100, 1, func(lo, hi int) {
			if lo == 57 {
				panic("boom")
			}
		})
	}()
	var n atomic.Int32
	p.Run(100, 1, func(lo, hi int) { n.Add(1) })
	if n.Load() != 100 {
		t.Errorf("after a panic the pool ran %d of 100 chunks", n.Load())
	}
}

// rowResult is what MatMul must give for one weight row and activation row:
// VecDot's result, or on the int8 GEMM path the pure-Go VecDot's, whose
// arithmetic the GEMM kernels follow.
func rowResult(ty gguf.Type, cols int, w, a []byte) float32 {
	if g := kernelsOf(ty).gemm; g != nil {
		return g.rowDot(cols, w, a)
	}
	return VecDot(ty, cols, w, a)
}

// TestMatMul checks MatMul against VecDot row by row for every weight type,
// several activation counts (decode, batched, and a prompt longer than one
// activation tile), odd row counts and pools.
func TestMatMul(t *testing.T) {
	const cols = 512
	for _, ty := range weightTypes {
		for _, rows := range []int{1, 7, 64, 300} {
			for _, nActs := range []int{1, 3, 8, 37} {
				for _, threads := range []int{1, 3} {
					name := fmt.Sprintf("%v/%dx%d/%d acts/%d threads", ty, rows, cols, nActs, threads)
					t.Run(name, func(t *testing.T) {
						p := NewPool(threads)
						defer p.Close()
						w := quantized(ty, randomRows(uint64(rows), rows, cols, 0.1))
						acts := activations(ty, randomRows(uint64(nActs)+50, nActs, cols, 1))
						wrb, arb := RowBytes(ty, cols), RowBytes(ActivationType(ty), cols)
						dst := make([]float32, nActs*rows+1)
						dst[nActs*rows] = 42 // past the end: must stay
						MatMul(dst, w, ty, rows, cols, acts, nActs, p)
						for a := 0; a < nActs; a++ {
							for r := 0; r < rows; r++ {
								want := rowResult(ty, cols, w[r*wrb:(r+1)*wrb], acts[a*arb:(a+1)*arb])
								if got := dst[a*rows+r]; math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("dst[%d][%d] = %v, VecDot = %v", a, r, got, want)
								}
							}
						}
						if dst[nActs*rows] != 42 {
							t.Error("MatMul wrote past its output")
						}
					})
				}
			}
		}
	}
}

// TestMatMulAllocs checks that a parallel MatMul allocates nothing: it runs
// for every weight matrix of every token.
func TestMatMulAllocs(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	const rows, cols = 2048, 256 // large enough to run in parallel
	w := quantized(gguf.TypeQ8_0, randomRows(1, rows, cols, 1))
	acts := activations(gguf.TypeQ8_0, randomRows(2, 2, cols, 1))
	dst := make([]float32, 2*rows)
	if n := testing.AllocsPerRun(20, func() { MatMul(dst, w, gguf.TypeQ8_0, rows, cols, acts, 2, p) }); n != 0 {
		t.Errorf("MatMul allocates %v times a call", n)
	}
}

// TestPoolParksAndWakes checks the slow paths of the pool's hand-offs:
// workers that have parked (the pool idle for longer than spinTime) are
// woken for the next operation, and a caller that stops spinning because a
// worker's chunk takes long sleeps until that worker is done.
func TestPoolParksAndWakes(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for round := range 5 {
		// Idle, every worker stops spinning and parks.
		for deadline := time.Now().Add(5 * time.Second); !allParked(p); time.Sleep(spinTime) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: workers still spinning 5 s after the last operation", round)
			}
		}
		var hits [64]atomic.Int32
		p.Run(len(hits), 1, func(lo, hi int) {
			if round%2 == 1 {
				// Chunks longer than the caller's spin: it sleeps for the
				// last worker's.
				time.Sleep(2 * spinTime)
			}
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("round %d: index %d run %d times", round, i, h)
			}
		}
	}
}

func allParked(p *Pool) bool {
	for _, w := range p.workers {
		if !w.parked.Load() {
			return false
		}
	}
	return true
}

// TestMatMulMany checks that products done together give exactly what
// MatMul gives for each alone: types on the int8 GEMM path (where the CPU
// has it) beside one without (Q4_0), all taking Q8_0 activations, for a
// decode row and a batch, on one thread and several.
func TestMatMulMany(t *testing.T) {
	const cols = 256
	types := []gguf.Type{gguf.TypeQ5_0, gguf.TypeQ8_0, gguf.TypeQ4_0}
	rows := []int{896 / 4, 128, 40}
	for _, nActs := range []int{1, 5} {
		for _, threads := range []int{1, 2} {
			p := NewPool(threads)
			acts := activations(gguf.TypeQ8_0, randomRows(9, nActs, cols, 1))
			ps := make([]Product, len(types))
			want := make([][]float32, len(types))
			for i, ty := range types {
				w := quantized(ty, randomRows(uint64(10+i), rows[i], cols, 0.1))
				ps[i] = Product{Dst: make([]float32, nActs*rows[i]), W: w, Type: ty, Rows: rows[i]}
				want[i] = make([]float32, nActs*rows[i])
				MatMul(want[i], w, ty, rows[i], cols, acts, nActs, p)
			}
			MatMulMany(ps, cols, acts, nActs, p)
			for i := range ps {
				for j, v := range ps[i].Dst {
					if math.Float32bits(v) != math.Float32bits(want[i][j]) {
						t.Fatalf("%d acts, %d threads, %v [%d]: together %v, alone %v", nActs, threads, types[i], j, v, want[i][j])
					}
				}
			}
			p.Close()
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MatMulMany of Q8_0 and Q4_K weights (different activations) did not panic")
		}
	}()
	MatMulMany([]Product{{Type: gguf.TypeQ8_0}, {Type: gguf.TypeQ4_K}}, 256, nil, 0, nil)
}

// TestPoolLateWorker: a worker delayed just after it counted itself out of one operation
// (as the OS may delay it) must not wake the caller of the next operation, which sleeps for
// its workers after spinTime, before that operation is done. The delay is forced through
// testHookCountedOut; the race detector (the tests run with -race) and the per-operation
// counts catch a caller that returns early.
func TestPoolLateWorker(t *testing.T) {
	testHookCountedOut = func() { time.Sleep(4 * spinTime) }
	p := NewPool(2)
	defer func() {
		p.Close() // the workers have exited: the hook can go
		testHookCountedOut = nil
	}()
	const n = 4
	for op := range 100 {
		var hits [n]atomic.Int32
		p.Run(n, 1, func(lo, hi int) {
			if lo%2 == 1 {
				time.Sleep(spinTime / 2)
			}
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("operation %d: index %d ran %d times by the time Run returned", op, i, h)
			}
		}
	}
}

// TestPoolSlowWaker: a caller the OS delays between publishing an operation and waking the
// parked workers may find a worker that has meanwhile run its part, spun out spinTime and
// parked for the next operation, and wake it. That worker must go back to sleep, not run the
// operation twice: counted out twice, it let a CI run's caller return while another worker was
// still in the operation (a data race), and later wait forever for a count that had gone
// negative. The delay is forced through testHookPublished; a deadlock fails the test after
// a while, a caller returning early fails it through the counts and the race detector.
func TestPoolSlowWaker(t *testing.T) {
	testHookPublished = func() { time.Sleep(20 * spinTime) }
	p := NewPool(3)
	const n = 6
	done := runCounted(p, n, 50, func(int) int { return 1 }, func(lo int) {
		if lo == n-1 {
			time.Sleep(spinTime) // one worker late, so the others count out first
		}
	})
	awaitCounted(t, p, done, "3 threads")
	testHookPublished = nil
}

// TestPoolRandomDelays stretches both moments the hooks expose, and the chunks, by random
// amounts around spinTime, so that workers meet operations spinning, parked, late and early in
// every order; each operation must still run every index once before Run returns.
func TestPoolRandomDelays(t *testing.T) {
	delay := func() {
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(3 * spinTime))))
		}
	}
	testHookPublished, testHookCountedOut = delay, delay
	for _, threads := range []int{2, 3, 4} {
		p := NewPool(threads)
		done := runCounted(p, 9, 150, func(op int) int { return 1 + op%3 }, func(int) { delay() })
		awaitCounted(t, p, done, fmt.Sprintf("%d threads", threads))
	}
	testHookPublished, testHookCountedOut = nil, nil
}

// runCounted runs ops operations over n indexes on p from a goroutine of its own, calling
// stretch(lo) at the start of each chunk, and checks after each Run that every index ran
// once. It sends what went wrong on the channel, or "" when all went well.
func runCounted(p *Pool, n, ops int, chunk func(op int) int, stretch func(lo int)) <-chan string {
	done := make(chan string, 1)
	go func() {
		for op := range ops {
			hits := make([]atomic.Int32, n)
			p.Run(n, chunk(op), func(lo, hi int) {
				stretch(lo)
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					done <- fmt.Sprintf("operation %d: index %d ran %d times by the time Run returned", op, i, h)
					return
				}
			}
		}
		done <- ""
	}()
	return done
}

// awaitCounted waits for runCounted and closes p, failing the test on what it reports or when
// a Run does not return (a worker counted out twice leaves its caller waiting forever); then
// the pool and the hooks stay as they are, since Close would wait for the stuck Run.
func awaitCounted(t *testing.T, p *Pool, done <-chan string, what string) {
	t.Helper()
	select {
	case msg := <-done:
		p.Close() // the workers have exited: the caller may reset the hooks
		if msg != "" {
			testHookPublished, testHookCountedOut = nil, nil
			t.Fatalf("%s: %s", what, msg)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s: Run did not return: a worker counted itself out of an operation twice", what)
	}
}
