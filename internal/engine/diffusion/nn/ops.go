package nn

import (
	"math"
	"unsafe"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
)

// chunkRows bounds the activation rows converted at once, so that im2col
// of a large image never holds more than a few MB.
const chunkRows = 256

// Forward computes dst[r*Out+o] = W·x[r] + b for n rows of x (In values
// each), the activations rounded to the weight's activation type first.
func (l *Linear) Forward(dst, x []float32, n int, pool *kernels.Pool) {
	b := l.newBuf(min(n, chunkRows))
	for r0 := 0; r0 < n; r0 += chunkRows {
		m := min(chunkRows, n-r0)
		// Each row rounds on its own, so the rows split among the threads
		// give the same values.
		pool.Run(m, 0, func(lo, hi int) { b.round(x[(r0+lo)*l.In:(r0+hi)*l.In], lo, hi) })
		l.matmul(dst[r0*l.Out:(r0+m)*l.Out], b, m, pool)
	}
}

// actBuf holds rows of activations rounded for a Linear: float32 rows of
// F16 values for F16 weights (kernels.MatMulF16 widens nothing then), rows
// quantized by kernels.QuantizeActivations otherwise.
type actBuf struct {
	l    *Linear
	f16  []float32
	q    []byte
	qRow int
}

func (l *Linear) newBuf(rows int) *actBuf {
	b := &actBuf{l: l}
	if l.Type == gguf.TypeF16 {
		b.f16 = make([]float32, rows*l.In)
		return b
	}
	b.qRow = kernels.RowBytes(kernels.ActivationType(l.Type), l.In)
	b.q = make([]byte, rows*b.qRow)
	return b
}

// round stores the rows x as rows [lo, hi) of the buffer.
func (b *actBuf) round(x []float32, lo, hi int) {
	in := b.l.In
	if b.f16 != nil {
		kernels.RoundF16(b.f16[lo*in:hi*in], x)
		return
	}
	kernels.QuantizeActivations(b.l.Type, x, b.q[lo*b.qRow:hi*b.qRow])
}

// matmul multiplies the first m rows of b and adds the bias.
func (l *Linear) matmul(dst []float32, b *actBuf, m int, pool *kernels.Pool) {
	if b.f16 != nil {
		kernels.MatMulF16(dst, l.W, l.Out, l.In, b.f16[:m*l.In], m, pool)
	} else {
		kernels.MatMul(dst, l.W, l.Type, l.Out, l.In, b.q[:m*b.qRow], m, pool)
	}
	if l.B != nil {
		pool.Run(m, 0, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := dst[r*l.Out : (r+1)*l.Out]
				for i, b := range l.B {
					row[i] += b
				}
			}
		})
	}
}

// Forward convolves x (InC channels) into a new map of Out channels (zero
// padding K/2; with stride s the size is ⌊(H+2·(K/2)-K)/s⌋+1).
func (c *Conv2D) Forward(x *Map, pool *kernels.Pool) *Map {
	stride := max(c.Stride, 1)
	pad := c.K / 2
	oh := (x.H+2*pad-c.K)/stride + 1
	ow := (x.W+2*pad-c.K)/stride + 1
	out := NewMap(c.Out, oh, ow)
	n := oh * ow
	if c.K == 1 && stride == 1 {
		c.Linear.Forward(out.Data, x.Data, n, pool)
		return out
	}
	// im2col a chunk of output pixels at a time, each row ordered
	// (channel, ky, kx) as the weight is, and rounded straight away: the
	// pixels split among the threads.
	cols := make([]float32, min(n, chunkRows)*c.In)
	b := c.newBuf(min(n, chunkRows))
	for p0 := 0; p0 < n; p0 += chunkRows {
		m := min(chunkRows, n-p0)
		pool.Run(m, 0, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				c.im2col(cols[p*c.In:(p+1)*c.In], x, (p0+p)/ow*stride, (p0+p)%ow*stride, pad)
			}
			b.round(cols[lo*c.In:hi*c.In], lo, hi)
		})
		c.matmul(out.Data[p0*c.Out:(p0+m)*c.Out], b, m, pool)
	}
	return out
}

// im2col writes the row of the output pixel whose window starts at (y, xx)
// (before padding).
func (c *Conv2D) im2col(row []float32, x *Map, y, xx, pad int) {
	kk := c.K * c.K
	for ky := range c.K {
		sy := y + ky - pad
		for kx := range c.K {
			sx := xx + kx - pad
			k := ky*c.K + kx
			if sy < 0 || sy >= x.H || sx < 0 || sx >= x.W {
				for ch := range c.InC {
					row[ch*kk+k] = 0
				}
				continue
			}
			src := x.Data[(sy*x.W+sx)*x.C : (sy*x.W+sx)*x.C+c.InC]
			for ch, v := range src {
				row[ch*kk+k] = v
			}
		}
	}
}

// GroupNorm normalizes x in place over groups of channels (and all
// pixels), then scales and shifts per channel; sums in float64 as
// ggml_group_norm keeps them. The groups split among the pool's threads.
func GroupNorm(x *Map, groups int, nm Norm, eps float32, pool *kernels.Pool) {
	per := x.C / groups
	n := x.H * x.W
	pool.Run(groups, 1, func(g0, g1 int) {
		for g := g0; g < g1; g++ {
			groupNorm(x, g*per, per, n, nm, eps)
		}
	})
}

func groupNorm(x *Map, c0, per, n int, nm Norm, eps float32) {
	var sum float64
	for p := range n {
		for _, v := range x.Data[p*x.C+c0 : p*x.C+c0+per] {
			sum += float64(v)
		}
	}
	mean := float32(sum / float64(n*per))
	var sq float64
	for p := range n {
		for _, v := range x.Data[p*x.C+c0 : p*x.C+c0+per] {
			d := v - mean
			sq += float64(d * d)
		}
	}
	scale := float32(1 / math.Sqrt(sq/float64(n*per)+float64(eps)))
	w, b := nm.W[c0:c0+per], nm.B[c0:c0+per]
	for p := range n {
		row := x.Data[p*x.C+c0 : p*x.C+c0+per]
		for i, v := range row {
			row[i] = (v-mean)*scale*w[i] + b[i]
		}
	}
}

// elementwise is the chunk of values each thread takes at a time in the
// element-wise operations.
const elementwise = 64 << 10

// SiLU applies x·σ(x) in place, chunks of x spread over the pool.
func SiLU(x []float32, pool *kernels.Pool) {
	pool.Run(len(x), elementwise, func(lo, hi int) { kernels.SiLU(x[lo:hi], x[lo:hi]) })
}

// Upsample2x repeats each pixel into a 2×2 block (nearest neighbour).
func Upsample2x(x *Map, pool *kernels.Pool) *Map {
	out := NewMap(x.C, 2*x.H, 2*x.W)
	pool.Run(out.H, 0, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			for xx := range out.W {
				copy(out.Data[(y*out.W+xx)*x.C:(y*out.W+xx+1)*x.C], x.Data[((y/2)*x.W+xx/2)*x.C:])
			}
		}
	})
	return out
}

// Add adds y to x in place, chunks spread over the pool (nil for small
// vectors).
func Add(x, y []float32, pool *kernels.Pool) {
	pool.Run(len(y), elementwise, func(lo, hi int) {
		xs := x[lo:hi]
		for i, v := range y[lo:hi] {
			xs[i] += v
		}
	})
}

// Attention computes, for each of nq query rows, softmax(q·kᵀ·scale)·v
// over nk key/value rows, per head: q, k, v and out hold rows of
// heads×dim values (head-major within a row, as a linear layer's output
// splits into heads).
//
// Each head runs as two matrix products on the GEMM kernels, a block of
// query rows at a time so the scores stay a few MB: Q·Kᵀ (the keys as F32
// "weights"), a softmax per row, then P·V (V transposed as the weights).
func Attention(out, q, k, v []float32, nq, nk, heads, dim int, scale float32, pool *kernels.Pool) {
	width := heads * dim
	block := max(1, min(nq, attentionScores/max(nk, 1)))
	kh := make([]float32, nk*dim)
	vt := make([]float32, dim*nk)
	qh := make([]float32, block*dim)
	scores := make([]float32, block*nk)
	oh := make([]float32, block*dim)
	for h := range heads {
		for j := range nk {
			copy(kh[j*dim:(j+1)*dim], k[j*width+h*dim:])
			for d := range dim {
				vt[d*nk+j] = v[j*width+h*dim+d]
			}
		}
		for i0 := 0; i0 < nq; i0 += block {
			m := min(block, nq-i0)
			for i := range m {
				copy(qh[i*dim:(i+1)*dim], q[(i0+i)*width+h*dim:])
			}
			kernels.MatMul(scores[:m*nk], f32Bytes(kh), gguf.TypeF32, nk, dim, f32Bytes(qh[:m*dim]), m, pool)
			softmaxRows(scores[:m*nk], nk, scale, pool)
			kernels.MatMul(oh[:m*dim], f32Bytes(vt), gguf.TypeF32, dim, nk, f32Bytes(scores[:m*nk]), m, pool)
			for i := range m {
				copy(out[(i0+i)*width+h*dim:(i0+i)*width+(h+1)*dim], oh[i*dim:(i+1)*dim])
			}
		}
	}
}

// attentionScores bounds the scores Attention holds at once (a variable so
// that tests can make the query blocks small).
var attentionScores = 2 << 20

// softmaxRows scales and softmaxes each row of n values, rows spread over
// the pool.
func softmaxRows(x []float32, n int, scale float32, pool *kernels.Pool) {
	run := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			kernels.Scale(row, scale)
			kernels.Softmax(row)
		}
	}
	if pool == nil {
		run(0, len(x)/n)
		return
	}
	pool.Run(len(x)/n, 0, run)
}

// f32Bytes views float32s as the little-endian bytes the F32 kernels read
// (no copy: every platform the kernels run on is little-endian).
func f32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

// Concat joins a and b (same size) along the channels: a's first.
func Concat(a, b *Map, pool *kernels.Pool) *Map {
	out := NewMap(a.C+b.C, a.H, a.W)
	pool.Run(a.H*a.W, 0, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			copy(out.Data[p*out.C:], a.Data[p*a.C:(p+1)*a.C])
			copy(out.Data[p*out.C+a.C:], b.Data[p*b.C:(p+1)*b.C])
		}
	})
	return out
}
