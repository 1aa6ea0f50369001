package kernels

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// MatMul multiplies the weight matrix w by nActs activation rows:
//
//	dst[a*rows + r] = VecDot(wt, cols, row r of w, row a of acts)
//
// for r < rows and a < nActs. w holds rows rows of cols elements of type wt
// back to back (RowBytes(wt, cols) bytes each), as a GGUF tensor of shape
// [cols, rows] lies in the file; acts holds nActs rows quantized by
// QuantizeActivations(wt, …) (RowBytes(ActivationType(wt), cols) bytes
// each). This is ggml's mul_mat with src0 = w and src1 = the activations:
// dst holds one output row of rows values per activation row.
//
// Each result is exactly what VecDot gives, or on the int8 GEMM path (Q8_0
// and Q5_0 where the CPU has AVX-512 VNNI: gemm.go) what the pure-Go VecDot
// gives, whatever nActs. Weight rows are split among the pool's threads
// (pool may be nil). On the GEMM path each thread packs groups of 16 rows
// and multiplies them by every activation row; otherwise it multiplies a
// chunk of weight rows by up to 16 activation rows while both are in its
// cache, four activation rows per pass over a weight row where the type has
// a four-row kernel, so a batch streams the weights from memory once per 16
// rows.
func MatMul(dst []float32, w []byte, wt gguf.Type, rows, cols int, acts []byte, nActs int, pool *Pool) {
	ps := [1]Product{{Dst: dst, W: w, Type: wt, Rows: rows}}
	MatMulMany(ps[:], cols, acts, nActs, pool)
}

// A Product is one weight matrix of MatMulMany: Rows rows of the shared
// column count, of type Type, at W, its results at Dst (as MatMul's dst).
type Product struct {
	Dst  []float32
	W    []byte
	Type gguf.Type
	Rows int
}

// MatMulMany does the MatMul of each product with the same activation rows
// in one parallel operation: a model's q, k and v projections, or its gate
// and up, read the same input, and one hand-out of their rows to the
// threads costs less than three (a decode step is mostly such hand-offs
// and the tails where one thread finishes before the other). The weight
// types must share an ActivationType; every result is what MatMul gives.
func MatMulMany(ps []Product, cols int, acts []byte, nActs int, pool *Pool) {
	if len(ps) == 0 {
		return
	}
	at := ActivationType(ps[0].Type)
	arb := RowBytes(at, cols)
	if nActs < 0 || len(acts) < nActs*arb {
		panic(fmt.Sprintf("kernels: MatMul: %d activation rows of %d bytes, %d bytes given", nActs, arb, len(acts)))
	}
	work := 0
	for _, p := range ps {
		k := kernelsOf(p.Type)
		if k.dot == nil {
			panic(fmt.Sprintf("kernels: MatMul: unsupported weight type %v", p.Type))
		}
		if ActivationType(p.Type) != at {
			panic(fmt.Sprintf("kernels: MatMulMany: %v and %v take different activations", ps[0].Type, p.Type))
		}
		if p.Rows < 0 {
			panic(fmt.Sprintf("kernels: MatMul: %d rows", p.Rows))
		}
		wrb := RowBytes(p.Type, cols)
		if len(p.W) < p.Rows*wrb || len(p.Dst) < nActs*p.Rows {
			panic(fmt.Sprintf("kernels: MatMul %v %dx%d by %d rows: weights %d bytes (need %d), dst %d (need %d)",
				p.Type, p.Rows, cols, nActs, len(p.W), p.Rows*wrb, len(p.Dst), nActs*p.Rows))
		}
		work += p.Rows * wrb * max(1, nActs)
	}
	if nActs == 0 || cols == 0 {
		for _, p := range ps {
			clear(p.Dst[:nActs*p.Rows]) // an empty product is 0, as VecDot's
		}
		return
	}
	if pool == nil {
		// One thread, buffers of its own.
		var prepared []byte
		for _, p := range ps {
			k := kernelsOf(p.Type)
			wrb := RowBytes(p.Type, cols)
			if g := k.gemm; g != nil {
				m := groupTask{g: g, dst: p.Dst, w: p.W, wrb: wrb, rows: p.Rows, cols: cols, acts: acts, arb: arb, nActs: nActs, nb: cols / g.blockSize}
				if prepared == nil {
					prepared = make([]byte, m.nb*nActs*(g.quantsBytes+g.sideBytes))
					m.prepare(prepared)
				} else {
					m.share(prepared)
				}
				m.run(0, p.Rows)
				continue
			}
			m := matmulTask{dot: k.dot, dot4: k.dot4, dst: p.Dst, w: p.W, wrb: wrb, rows: p.Rows, cols: cols, acts: acts, arb: arb, nActs: nActs}
			m.run(0, p.Rows)
		}
		return
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	pool.mp.plan(pool, ps, cols, acts, arb, nActs, work)
	defer pool.mp.reset() // drop the references to the caller's buffers
	if len(pool.mp.chunks) == 1 || pool.threads == 1 || work < minParallelBytes*pool.threads {
		// Waking the workers would cost more than they save.
		pool.mp.run(0, len(pool.mp.chunks))
		return
	}
	pool.runLocked(len(pool.mp.chunks), 1, &pool.mp)
}

// Cache blocking. A chunk of weight rows (at most chunkBytes) is multiplied
// by actTile activation rows at a time, so that both stay in a core's L2
// cache: a long prompt then streams the weights once per tile from memory
// and each tile once per chunk from L3, instead of every activation row
// once per weight row.
const (
	chunkBytes = 256 << 10
	actTile    = 16
)

// minParallelBytes is the least weight traffic (bytes × activation rows)
// per thread worth a parallel MatMul: at 20-30 GB/s it is 4-6 µs of work,
// against about 1 µs to wake a worker and collect its result.
const minParallelBytes = 128 << 10

// matmulTask is one MatMul's arguments; run computes its rows [lo, hi).
type matmulTask struct {
	dot        dotFunc
	dot4       dot4Func // nil: one activation row at a time
	dst        []float32
	w, acts    []byte
	wrb, arb   int
	rows, cols int
	nActs      int
}

func (m *matmulTask) run(lo, hi int) {
	for t0 := 0; t0 < m.nActs; t0 += actTile {
		t1 := min(t0+actTile, m.nActs)
		for r := lo; r < hi; r++ {
			row := m.w[r*m.wrb : (r+1)*m.wrb]
			a := t0
			if m.dot4 != nil {
				// Four activation rows per pass over the weight row: its
				// blocks are decoded once for the four.
				for ; a+4 <= t1; a += 4 {
					out := m.dot4(m.cols, row, m.acts[a*m.arb:(a+4)*m.arb], m.arb)
					for k, v := range out {
						m.dst[(a+k)*m.rows+r] = v
					}
				}
			}
			for ; a < t1; a++ {
				m.dst[a*m.rows+r] = m.dot(m.cols, row, m.acts[a*m.arb:(a+1)*m.arb])
			}
		}
	}
}

// matMulGroups is MatMul on a type's groupGEMM path.
// manyTask is a MatMulMany planned for a Pool: each product's task, and
// the chunks of rows the threads take, product after product. Its slices
// live as long as the pool, so that a call allocates nothing once warm.
type manyTask struct {
	mm     []matmulTask
	gm     []groupTask
	subs   []task // product i's task: a pointer into mm or gm
	chunks []manyChunk
}

// manyChunk is rows [lo, hi) of product sub.
type manyChunk struct{ sub, lo, hi int }

func (t *manyTask) run(lo, hi int) {
	for _, c := range t.chunks[lo:hi] {
		t.subs[c.sub].run(c.lo, c.hi)
	}
}

// plan sets t up for ps; pool's buffers hold the prepared activations.
func (t *manyTask) plan(pool *Pool, ps []Product, cols int, acts []byte, arb, nActs, work int) {
	threads := pool.threads
	if work < minParallelBytes*threads {
		threads = 1
	}
	t.mm, t.gm, t.subs, t.chunks = t.mm[:0], t.gm[:0], t.subs[:0], t.chunks[:0]
	var prepared []byte
	for i, p := range ps {
		k := kernelsOf(p.Type)
		wrb := RowBytes(p.Type, cols)
		// Chunks of rows: enough of them per thread to balance, each big
		// enough that handing it out costs little beside its dot products;
		// on the GEMM path whole groups (a group is packed once whatever
		// the chunk), otherwise small enough to stay in a core's L2 while
		// every activation tile passes by.
		chunk := (p.Rows + 8*threads - 1) / (8 * threads)
		if g := k.gemm; g != nil {
			t.gm = append(t.gm, groupTask{g: g, dst: p.Dst, w: p.W, wrb: wrb, rows: p.Rows, cols: cols, acts: acts, arb: arb, nActs: nActs, nb: cols / g.blockSize, packs: pool.packBuffers()})
			m := &t.gm[len(t.gm)-1]
			if prepared == nil {
				need := m.nb * nActs * (g.quantsBytes + g.sideBytes)
				if cap(pool.gemmBufs.acts) < need {
					pool.gemmBufs.acts = make([]byte, need)
				}
				prepared = pool.gemmBufs.acts[:need]
				m.prepare(prepared)
			} else {
				m.share(prepared)
			}
			chunk = (chunk + groupRows - 1) / groupRows * groupRows
		} else {
			t.mm = append(t.mm, matmulTask{dot: k.dot, dot4: k.dot4, dst: p.Dst, w: p.W, wrb: wrb, rows: p.Rows, cols: cols, acts: acts, arb: arb, nActs: nActs})
			chunk = min(max(4, chunk), max(4, chunkBytes/wrb))
		}
		for lo := 0; lo < p.Rows; lo += chunk {
			t.chunks = append(t.chunks, manyChunk{i, lo, min(lo+chunk, p.Rows)})
		}
	}
	// The tasks' addresses, now that the slices no longer grow.
	gi, mi := 0, 0
	for _, p := range ps {
		if kernelsOf(p.Type).gemm != nil {
			t.subs = append(t.subs, &t.gm[gi])
			gi++
		} else {
			t.subs = append(t.subs, &t.mm[mi])
			mi++
		}
	}
}

// reset drops t's references to the caller's buffers.
func (t *manyTask) reset() {
	clear(t.mm)
	clear(t.gm)
	clear(t.subs)
	t.mm, t.gm, t.subs, t.chunks = t.mm[:0], t.gm[:0], t.subs[:0], t.chunks[:0]
}

// packBuffers returns the pool's per-thread packing buffers, made on first use.
func (p *Pool) packBuffers() chan []byte {
	if p.gemmBufs.packs == nil {
		p.gemmBufs.packs = make(chan []byte, p.threads)
		for range p.threads {
			p.gemmBufs.packs <- nil
		}
	}
	return p.gemmBufs.packs
}
