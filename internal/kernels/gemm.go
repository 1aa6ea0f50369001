package kernels

import "unsafe"

// groupRows is how many weight rows a groupGEMM multiplies at once.
const groupRows = 16

// groupGEMM is a weight type's path through the int8 GEMM kernels, where the
// CPU has them (AVX-512 VNNI on amd64, gemm_amd64.go). MatMul packs each
// group of 16 weight rows once into a buffer of its thread, so that one
// vector instruction multiplies the sixteen rows by four activation bytes,
// prepares the activation rows once per call, and runs the packed group
// against tiles of up to eight activation rows. The results are bit for bit
// those of the pure-Go VecDot (ggml's scalar order: one exact integer sum
// per block, then sumf += float(sumi)·(d_w·d_a)); rows past the last whole
// group take that pure-Go dot. MatMul's result thus stays independent of the
// batch and of the threads, as it is on the other paths.
type groupGEMM struct {
	packedBlock int // bytes of one packed block of a group
	blockSize   int // elements per block
	// quantsBytes and sideBytes are the prepared activations' bytes per
	// block and row: the quants, and what the kernels need beside them.
	quantsBytes, sideBytes int
	// pack lays out nb blocks of the groupRows rows at w (stride wrb) in dst.
	pack func(w []byte, wrb, nb int, dst []byte)
	// prep prepares activation row a (nb blocks) as the tile kernels read
	// it: block b's quants at q[b·qstride:], its side data at side[b·sstride:].
	prep func(a []byte, nb int, q []byte, qstride int, side []byte, sstride int)
	// tile multiplies a packed group by n ≤ 8 prepared activation rows and
	// stores row t's 16 results at dst[t·ostride:].
	tile func(packed []byte, nb int, q []byte, qstride int, side []byte, sstride int, dst []float32, ostride, n int)
	// gemv multiplies the groupRows rows at w by one prepared activation
	// row without packing them (decode, where a packed group would serve
	// only once), storing the 16 results at dst: the same bits as pack and
	// tile.
	gemv   func(w []byte, wrb, nb int, q, side []byte, dst []float32)
	rowDot dotFunc // the same arithmetic for one row: the tail
}

// gemmBuffers are a Pool's buffers for the groupGEMM path, kept between
// calls so that a MatMul allocates nothing once warm: the prepared
// activations (used under the Pool's lock) and one packing buffer per
// thread. A buffer too small for a call is replaced by a bigger one: a
// model has few shapes, and the biggest soon serves them all.
type gemmBuffers struct {
	acts  []byte
	packs chan []byte
}

// packBuffer returns a packing buffer of n bytes from packs (nil: a new one).
func packBuffer(packs chan []byte, n int) []byte {
	if packs != nil {
		if b := <-packs; cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n)
}

// groupTask is a MatMul on the groupGEMM path: the activations are prepared,
// run(lo, hi) does weight rows [lo, hi), lo a multiple of groupRows.
type groupTask struct {
	g     *groupGEMM
	dst   []float32
	w     []byte
	wrb   int
	rows  int
	cols  int
	acts  []byte // the caller's activations, for the tail rows
	arb   int
	nActs int
	q     []byte // prepared quants, block-major: block b, then activation row
	side  []byte // prepared side data, the same way
	nb    int
	packs chan []byte // packing buffers, one per thread; nil: allocate
}

// prepare lays the activations out for the tile kernels.
func (m *groupTask) prepare(buf []byte) {
	g := m.g
	qstride, sstride := m.nActs*g.quantsBytes, m.nActs*g.sideBytes
	m.q = buf[:m.nb*qstride]
	m.side = buf[m.nb*qstride : m.nb*(qstride+sstride)]
	for a := 0; a < m.nActs; a++ {
		g.prep(m.acts[a*m.arb:(a+1)*m.arb], m.nb, m.q[a*g.quantsBytes:], qstride, m.side[a*g.sideBytes:], sstride)
	}
}

// share points m at activations another groupTask of the same call has
// prepared (buf, as given to its prepare).
func (m *groupTask) share(buf []byte) {
	qstride := m.nActs * m.g.quantsBytes
	m.q = buf[:m.nb*qstride]
	m.side = buf[m.nb*qstride:]
}

func (m *groupTask) run(lo, hi int) {
	g := m.g
	whole := lo + (hi-lo)/groupRows*groupRows
	if m.nActs == 1 && g.gemv != nil {
		for r := lo; r < whole; r += groupRows {
			g.gemv(m.w[r*m.wrb:], m.wrb, m.nb, m.q, m.side, m.dst[r:])
		}
	} else if whole > lo {
		packed := packBuffer(m.packs, m.nb*g.packedBlock)
		qstride, sstride := m.nActs*g.quantsBytes, m.nActs*g.sideBytes
		for r := lo; r < whole; r += groupRows {
			g.pack(m.w[r*m.wrb:], m.wrb, m.nb, packed)
			for t0 := 0; t0 < m.nActs; t0 += 8 {
				n := min(8, m.nActs-t0)
				g.tile(packed, m.nb, m.q[t0*g.quantsBytes:], qstride, m.side[t0*g.sideBytes:], sstride, m.dst[t0*m.rows+r:], m.rows, n)
			}
		}
		if m.packs != nil {
			m.packs <- packed
		}
	}
	for r := whole; r < hi; r++ {
		row := m.w[r*m.wrb : (r+1)*m.wrb]
		for a := 0; a < m.nActs; a++ {
			m.dst[a*m.rows+r] = g.rowDot(m.cols, row, m.acts[a*m.arb:(a+1)*m.arb])
		}
	}
}

// f32Ptr is the address of x[0]; the caller has checked len(x) > 0.
func f32Ptr(x []float32) *float32 { return (*float32)(unsafe.Pointer(unsafe.SliceData(x))) }
