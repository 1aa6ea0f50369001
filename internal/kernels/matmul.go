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
// Weight rows are split among the pool's threads (pool may be nil), and each
// weight row is multiplied with every activation row while it is in the
// cache, so a batch of activation rows streams the weights from memory once.
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
	m := matmulTask{dot: k.dot, dot4: k.dot4, dst: dst, w: w, wrb: wrb, rows: rows, cols: cols, acts: acts, arb: arb, nActs: nActs}
	if pool.Threads() == 1 {
		m.run(0, rows)
		return
	}
	// Chunks of rows: enough of them per thread to balance, each big enough
	// that handing it out costs little beside its dot products.
	chunk := max(4, (rows+8*pool.threads-1)/(8*pool.threads))
	if chunk >= rows {
		m.run(0, rows)
		return
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	pool.mm = m
	pool.runLocked(rows, chunk, &pool.mm)
	pool.mm = matmulTask{} // drop the references to the caller's buffers
}

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
	for r := lo; r < hi; r++ {
		row := m.w[r*m.wrb : (r+1)*m.wrb]
		a := 0
		if m.dot4 != nil {
			// Four activation rows per pass over the weight row: its blocks
			// are decoded once for the four.
			for ; a+4 <= m.nActs; a += 4 {
				out := m.dot4(m.cols, row, m.acts[a*m.arb:(a+4)*m.arb], m.arb)
				for k, v := range out {
					m.dst[(a+k)*m.rows+r] = v
				}
			}
		}
		for ; a < m.nActs; a++ {
			m.dst[a*m.rows+r] = m.dot(m.cols, row, m.acts[a*m.arb:(a+1)*m.arb])
		}
	}
}
