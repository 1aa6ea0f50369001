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
// Each result is exactly what VecDot gives. Weight rows are split among the
// pool's threads (pool may be nil); each thread multiplies a chunk of weight
// rows by up to 16 activation rows while both are in its cache, four
// activation rows per pass over a weight row where the type has a four-row
// kernel, so a batch streams the weights from memory once per 16 rows.
func MatMul(dst []float32, w []byte, wt gguf.Type, rows, cols int, acts []byte, nActs int, pool *Pool) {
	k := kernelsOf(wt)
	if k.dot == nil {
		panic(fmt.Sprintf("kernels: MatMul: unsupported weight type %v", wt))
	}
	if rows < 0 || nActs < 0 {
		panic(fmt.Sprintf("kernels: MatMul: %d rows, %d activation rows", rows, nActs))
	}
	wrb := RowBytes(wt, cols)
	arb := RowBytes(ActivationType(wt), cols)
	if len(w) < rows*wrb || len(acts) < nActs*arb || len(dst) < nActs*rows {
		panic(fmt.Sprintf("kernels: MatMul %v %dx%d by %d rows: weights %d bytes (need %d), activations %d (need %d), dst %d (need %d)",
			wt, rows, cols, nActs, len(w), rows*wrb, len(acts), nActs*arb, len(dst), nActs*rows))
	}
	if k.gemm != nil && rows > 0 && nActs > 0 && cols > 0 {
		matMulGroups(k.gemm, dst, w, wrb, rows, cols, acts, arb, nActs, pool)
		return
	}
	m := matmulTask{dot: k.dot, dot4: k.dot4, dst: dst, w: w, wrb: wrb, rows: rows, cols: cols, acts: acts, arb: arb, nActs: nActs}
	// Chunks of rows: enough of them per thread to balance, each big enough
	// that handing it out costs little beside its dot products, and small
	// enough to stay in a core's L2 while every activation tile passes by.
	threads := pool.Threads()
	if rows*wrb*max(1, nActs) < minParallelBytes*threads {
		threads = 1 // waking the workers would cost more than they save
	}
	chunk := max(4, (rows+8*threads-1)/(8*threads))
	chunk = min(chunk, max(4, chunkBytes/wrb))
	if threads == 1 || chunk >= rows {
		for lo := 0; lo < rows; lo += chunk {
			m.run(lo, min(lo+chunk, rows))
		}
		return
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	pool.mm = m
	defer func() { pool.mm = matmulTask{} }() // drop the references to the caller's buffers
	pool.runLocked(rows, chunk, &pool.mm)
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
func matMulGroups(g *groupGEMM, dst []float32, w []byte, wrb, rows, cols int, acts []byte, arb, nActs int, pool *Pool) {
	nb := cols / g.blockSize
	m := groupTask{g: g, dst: dst, w: w, wrb: wrb, rows: rows, cols: cols, acts: acts, arb: arb, nActs: nActs, nb: nb}
	need := nb * nActs * (g.quantsBytes + g.sideBytes)
	if pool == nil {
		m.prepare(make([]byte, need))
		m.run(0, rows)
		return
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	bufs := &pool.gemmBufs
	if cap(bufs.acts) < need {
		bufs.acts = make([]byte, need)
	}
	if bufs.packs == nil {
		bufs.packs = make(chan []byte, pool.threads)
		for range pool.threads {
			bufs.packs <- nil
		}
	}
	m.packs = bufs.packs
	m.prepare(bufs.acts[:need])
	threads := pool.threads
	if rows*wrb*nActs < minParallelBytes*threads {
		threads = 1
	}
	// Chunks of whole groups, several per thread so that a delayed thread
	// takes fewer; a group's packing is done once whatever the chunk.
	chunk := (rows + 8*threads - 1) / (8 * threads)
	chunk = (chunk + groupRows - 1) / groupRows * groupRows
	if threads == 1 || chunk >= rows {
		m.run(0, rows)
		return
	}
	pool.gm = m
	defer func() { pool.gm = groupTask{} }()
	pool.runLocked(rows, chunk, &pool.gm)
}
