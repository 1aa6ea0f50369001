package llama

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
)

// ErrContextFull is returned when a sequence would grow past its context size.
var ErrContextFull = errors.New("context full")

// Step is one sequence's share of a forward pass: the tokens that follow what its cache holds.
type Step struct {
	Cache  *KVCache
	Tokens []int32
	// Logits, when not nil, receives the logits (Vocab floats) of the token after the last one.
	Logits []float32
}

// Runner runs forward passes of a model on a pool of goroutines, reusing its buffers from one
// pass to the next. A Runner is not safe for concurrent use; the sequences of one Runner
// advance together by putting their Steps in one Forward call.
type Runner struct {
	m      *Model
	pool   *pool
	maxCtx int

	// Per-pass buffers, grown to the largest batch seen.
	tokens int
	x, xn  []float32 // residual stream and its normalized copy, tokens × Embd
	q      []float32 // tokens × qDim
	k, v   []float32 // tokens × kvDim
	att    []float32 // attention output, tokens × qDim
	gate   []float32 // tokens × FF
	up     []float32
	out    []float32 // projection output, tokens × Embd
	logits []float32 // rows that want logits × Vocab
	acts   []byte    // activations converted for a weight type
	// What acts holds: the conversion to actsType, actsSize bytes.
	actsType gguf.Type
	actsSize int
	rowSeq   []int
	rowPos   []int
	kf, vf   []float32 // a layer's keys and values as float32, for the tiled attention
}

// NewRunner returns a Runner using threads goroutines (0: one per CPU) for sequences of at
// most maxCtx positions.
func (m *Model) NewRunner(threads, maxCtx int) *Runner {
	p := m.Params
	widest := max(p.Embd, p.FF, p.qDim())
	// Scratch per goroutine: a decoded weight row, attention scores, or a rounded query and
	// an F16 accumulator.
	scratch := max(widest, maxCtx, 3*p.HeadDimK, attendF32Scratch(p.HeadDimK, p.Heads/p.KVHeads, maxCtx))
	return &Runner{m: m, pool: newPool(threads, scratch), maxCtx: maxCtx}
}

// Threads returns the number of goroutines the Runner computes with.
func (r *Runner) Threads() int { return r.pool.threads }

func (r *Runner) grow(n int) {
	if n <= r.tokens {
		return
	}
	p := r.m.Params
	r.tokens = n
	r.x = make([]float32, n*p.Embd)
	r.xn = make([]float32, n*p.Embd)
	r.q = make([]float32, n*p.qDim())
	r.k = make([]float32, n*p.kvDim())
	r.v = make([]float32, n*p.kvDim())
	r.att = make([]float32, n*p.qDim())
	r.gate = make([]float32, n*p.FF)
	r.up = make([]float32, n*p.FF)
	r.out = make([]float32, n*p.Embd)
	r.rowSeq = make([]int, n)
	r.rowPos = make([]int, n)
}

// Forward runs the tokens of every step through the model, appending their keys and values
// to each step's cache and filling the logits asked for. On an error (a token out of range,
// a cache that would overflow) no cache changes.
func (r *Runner) Forward(steps []Step) error {
	p := r.m.Params
	n := 0
	for i, s := range steps {
		if s.Cache == nil || len(s.Tokens) == 0 {
			return fmt.Errorf("step %d: no cache or no tokens", i)
		}
		if s.Cache.ctx > r.maxCtx {
			return fmt.Errorf("step %d: cache context %d exceeds the runner's %d", i, s.Cache.ctx, r.maxCtx)
		}
		if s.Logits != nil && len(s.Logits) != p.Vocab {
			return fmt.Errorf("step %d: logits buffer holds %d floats, want %d", i, len(s.Logits), p.Vocab)
		}
		for _, t := range s.Tokens {
			if t < 0 || int(t) >= p.Vocab {
				return fmt.Errorf("step %d: token %d is outside the vocabulary of %d", i, t, p.Vocab)
			}
		}
		if s.Cache.n+len(s.Tokens) > s.Cache.ctx {
			return fmt.Errorf("%w: %d positions do not fit in a context of %d", ErrContextFull, s.Cache.n+len(s.Tokens), s.Cache.ctx)
		}
		n += len(s.Tokens)
	}
	for _, s := range steps {
		if err := s.Cache.reserve(len(s.Tokens)); err != nil {
			return err
		}
	}
	if n <= maxBatch {
		r.forward(steps, n)
		return nil
	}
	// A larger batch goes through in passes of at most maxBatch rows, a step's tokens split
	// across passes where they must (its cache then grows pass by pass, as llama.cpp's
	// micro-batches do): the buffers stay sized to maxBatch rows, not to the whole batch.
	var pass []Step
	rows := 0
	for _, s := range steps {
		for off := 0; off < len(s.Tokens); {
			k := min(len(s.Tokens)-off, maxBatch-rows)
			st := Step{Cache: s.Cache, Tokens: s.Tokens[off : off+k]}
			if off+k == len(s.Tokens) {
				st.Logits = s.Logits
			}
			pass = append(pass, st)
			rows += k
			off += k
			if rows == maxBatch {
				r.forward(pass, rows)
				pass, rows = pass[:0], 0
			}
		}
	}
	if rows > 0 {
		r.forward(pass, rows)
	}
	return nil
}

// maxBatch is the most rows one pass of the layers takes (llama.cpp's default micro-batch,
// n_ubatch, is 512). Past a few dozen rows the matrix products are compute-bound, so larger
// passes would gain nothing but memory: at 256 rows the pass buffers of a Qwen2.5-0.5B are
// about 15 MB (gate and up, 2 × 256 × 4864 floats, are most of it).
const maxBatch = 256

// forward runs one pass of n rows, the steps' caches already reserved.
func (r *Runner) forward(steps []Step, n int) {
	p := r.m.Params
	r.grow(n)
	E := p.Embd
	t := 0
	for i, s := range steps {
		for j, tok := range s.Tokens {
			r.rowSeq[t], r.rowPos[t] = i, s.Cache.n+j
			r.m.embd.decodeRow(int(tok), r.x[t*E:(t+1)*E])
			t++
		}
	}
	for l := range r.m.layers {
		r.layer(l, steps, n)
	}
	for _, s := range steps {
		s.Cache.n += len(s.Tokens)
	}

	// Logits only for the rows that want them: the output matrix is the largest of all.
	rows := 0
	t = 0
	for _, s := range steps {
		t += len(s.Tokens)
		if s.Logits != nil {
			rmsNorm(r.xn[rows*E:(rows+1)*E], r.x[(t-1)*E:t*E], r.m.norm, p.NormEps)
			rows++
		}
	}
	if rows == 0 {
		return
	}
	if len(r.logits) < rows*p.Vocab {
		r.logits = make([]float32, rows*p.Vocab)
	}
	r.mul(r.m.output, r.logits, r.xn[:rows*E], rows, false)
	rows = 0
	for _, s := range steps {
		if s.Logits != nil {
			copy(s.Logits, r.logits[rows*p.Vocab:(rows+1)*p.Vocab])
			rows++
		}
	}
}

// mul multiplies the n activation rows in x by w, converting them first to the type ggml
// converts activations to for w's type (F16 for F16 weights, Q8_0 for Q4_0, Q8_K for the
// k-quants, …), as llama.cpp's CPU backend does. With same, x holds the rows of the previous
// call: their conversion is reused when it was to the same type (q, k and v share their
// input, as do gate and up; ggml converts such a shared input once too).
func (r *Runner) mul(w *matrix, out, x []float32, n int, same bool) {
	at := kernels.ActivationType(w.typ)
	size := n * kernels.RowBytes(at, w.cols)
	if !same || r.actsType != at || r.actsSize != size {
		if len(r.acts) < size {
			r.acts = make([]byte, size)
		}
		kernels.QuantizeActivations(w.typ, x[:n*w.cols], r.acts[:size])
		r.actsType, r.actsSize = at, size
	}
	kernels.MatMul(out, w.data, w.typ, w.rows, w.cols, r.acts[:size], n, r.pool.kp)
}

// mul2 and mul3 multiply x by two or three matrices that read it, in one parallel operation
// where their weight types take the same activations (q, k and v; gate and up), else one
// after the other.
func (r *Runner) mul2(w0, w1 *matrix, out0, out1, x []float32, n int) {
	if kernels.ActivationType(w0.typ) != kernels.ActivationType(w1.typ) {
		r.mul(w0, out0, x, n, false)
		r.mul(w1, out1, x, n, true)
		return
	}
	ps := [2]kernels.Product{w0.product(out0), w1.product(out1)}
	r.mulMany(ps[:], x, n)
}

func (r *Runner) mul3(w0, w1, w2 *matrix, out0, out1, out2, x []float32, n int) {
	at := kernels.ActivationType(w0.typ)
	if kernels.ActivationType(w1.typ) != at || kernels.ActivationType(w2.typ) != at {
		r.mul(w0, out0, x, n, false)
		r.mul(w1, out1, x, n, true)
		r.mul(w2, out2, x, n, true)
		return
	}
	ps := [3]kernels.Product{w0.product(out0), w1.product(out1), w2.product(out2)}
	r.mulMany(ps[:], x, n)
}

// mulMany converts x once for the products (all of ps[0]'s activation type and column
// count) and runs them together.
func (r *Runner) mulMany(ps []kernels.Product, x []float32, n int) {
	cols := len(x) / n
	at := kernels.ActivationType(ps[0].Type)
	size := n * kernels.RowBytes(at, cols)
	if len(r.acts) < size {
		r.acts = make([]byte, size)
	}
	kernels.QuantizeActivations(ps[0].Type, x[:n*cols], r.acts[:size])
	r.actsType, r.actsSize = at, size
	kernels.MatMulMany(ps, cols, r.acts[:size], n, r.pool.kp)
}

// product is m as a kernels.Product writing to out.
func (m *matrix) product(out []float32) kernels.Product {
	return kernels.Product{Dst: out, W: m.data, Type: m.typ, Rows: m.rows}
}

// Close stops the Runner's worker goroutines.
func (r *Runner) Close() { r.pool.close() }

func (r *Runner) layer(li int, steps []Step, n int) {
	p := r.m.Params
	l := &r.m.layers[li]
	E, qd, kvd, hd := p.Embd, p.qDim(), p.kvDim(), p.HeadDimK

	// The per-row work between the matrix products runs on the pool's threads too (rows
	// apart): in a long prompt it would otherwise leave a core idle for a fifth of the pass.
	r.rows(n, func(t int, _ []float32) {
		rmsNorm(r.xn[t*E:(t+1)*E], r.x[t*E:(t+1)*E], l.attnNorm, p.NormEps)
	})
	xn := r.xn[:n*E]
	r.mul3(l.wq, l.wk, l.wv, r.q, r.k, r.v, xn, n)
	r.rows(n, func(t int, scratch []float32) {
		q, k, v := r.q[t*qd:(t+1)*qd], r.k[t*kvd:(t+1)*kvd], r.v[t*kvd:(t+1)*kvd]
		addBias(q, l.bq)
		addBias(k, l.bk)
		addBias(v, l.bv)
		if l.qNorm != nil {
			for h := range p.Heads {
				rmsNorm(q[h*hd:(h+1)*hd], q[h*hd:(h+1)*hd], l.qNorm, p.NormEps)
			}
			for h := range p.KVHeads {
				rmsNorm(k[h*hd:(h+1)*hd], k[h*hd:(h+1)*hd], l.kNorm, p.NormEps)
			}
		}
		cs := scratch[:p.Rot] // rope's cos/sin table for this position
		p.rope(q, p.Heads, hd, r.rowPos[t], r.m.ropeFreqs, cs)
		p.rope(k, p.KVHeads, hd, r.rowPos[t], r.m.ropeFreqs, cs)
		steps[r.rowSeq[t]].Cache.store(li, r.rowPos[t], k, v)
	})
	r.attention(li, steps, n)
	r.mul(l.wo, r.out, r.att[:n*qd], n, false)
	r.rows(n, func(t int, _ []float32) {
		o := r.out[t*E : (t+1)*E]
		addBias(o, l.bo)
		x := r.x[t*E : (t+1)*E]
		for i := range x {
			x[i] += o[i]
		}
		rmsNorm(r.xn[t*E:(t+1)*E], x, l.ffnNorm, p.NormEps)
	})
	F := p.FF
	r.mul2(l.gate, l.up, r.gate, r.up, xn, n)
	// SwiGLU on the pool's threads: its exponentials are a tenth of a prefill's work, and
	// alone on one core they would leave the other idle.
	r.pool.run(n*F, swigluGrain, func(lo, hi int, _ []float32) {
		for lo < hi {
			t, i := lo/F, lo%F
			end := min(hi, (t+1)*F)
			g, u := r.gate[lo:end], r.up[lo:end]
			if l.gateB != nil {
				addBias(g, l.gateB[i:i+len(g)])
			}
			if l.upB != nil {
				addBias(u, l.upB[i:i+len(u)])
			}
			kernels.SwiGLU(g, g, u)
			lo = end
		}
	})
	r.mul(l.down, r.out, r.gate[:n*F], n, false)
	r.rows(n, func(t int, _ []float32) {
		o := r.out[t*E : (t+1)*E]
		addBias(o, l.downB)
		x := r.x[t*E : (t+1)*E]
		for i := range x {
			x[i] += o[i]
		}
	})
}

// rows calls fn for each row t < n on the pool's threads, with a goroutine's scratch.
func (r *Runner) rows(n int, fn func(t int, scratch []float32)) {
	r.pool.run(n, 1, func(lo, hi int, scratch []float32) {
		for t := lo; t < hi; t++ {
			fn(t, scratch)
		}
	})
}

// attention computes softmax(q·K/√d)·V for every row and head against the row's sequence's
// cache up to the row's position (causal). It follows ggml's CPU flash attention, which
// llama.cpp uses by default: batches of fewer than faTile rows (every decode step) take the
// vector path, which rounds the query to F16 and accumulates the weighted values in F16 with
// an online softmax; larger batches take the tiled path, all in F32.
func (r *Runner) attention(li int, steps []Step, n int) {
	p := r.m.Params
	hd, qd := p.HeadDimK, p.qDim()
	scale := float32(1 / math.Sqrt(float64(hd)))
	// llama.cpp decides per batch; deciding per sequence instead (by the rows it has in this
	// pass, which for one sequence alone is the same thing) keeps a sequence's results
	// independent of what else shares its batch.
	group := p.Heads / p.KVHeads
	tiled := func(t int) bool { return len(steps[r.rowSeq[t]].Tokens) >= faTile }
	r.pool.run(n*p.Heads, 1, func(lo, hi int, scratch []float32) {
		for item := lo; item < hi; item++ {
			t, h := item/p.Heads, item%p.Heads
			if tiled(t) {
				continue
			}
			q := r.q[t*qd+h*hd : t*qd+(h+1)*hd]
			out := r.att[t*qd+h*hd : t*qd+(h+1)*hd]
			attendF16(out, q, steps[r.rowSeq[t]].Cache, li, h/group, r.rowPos[t], scale, scratch)
		}
	})
	// The tiled path, a sequence at a time: its keys and values converted to float32 once
	// for all its rows, then the query heads that share a KV head taken together.
	for first := 0; first < n; {
		s := steps[r.rowSeq[first]]
		rows := len(s.Tokens)
		if !tiled(first) {
			first += rows
			continue
		}
		npos := r.rowPos[first+rows-1] + 1
		keysT, vals := r.convertKV(s.Cache, li, npos, hd)
		kvd := s.Cache.kvDim
		r.pool.run(rows*p.KVHeads, 1, func(lo, hi int, scratch []float32) {
			for item := lo; item < hi; item++ {
				t, kvh := first+item/p.KVHeads, item%p.KVHeads
				q := r.q[t*qd+kvh*group*hd : t*qd+(kvh+1)*group*hd]
				out := r.att[t*qd+kvh*group*hd : t*qd+(kvh+1)*group*hd]
				attendF32(out, q, hd, keysT[kvh*hd*npos:(kvh+1)*hd*npos], npos, vals[kvh*hd:], kvd, r.rowPos[t], scale, scratch)
			}
		})
		first += rows
	}
}

// convertKV returns layer li's keys and values of c's first n positions as float32 in the
// Runner's buffers: the values position-major like the cache (n rows of kvDim), the keys
// transposed per KV head (head h's dimension d holds its n positions at keysT[(h·hd+d)·n:]),
// the layouts kernels.VecMat takes for the values and the keys.
func (r *Runner) convertKV(c *KVCache, li, n, hd int) (keysT, vals []float32) {
	kvd := c.kvDim
	size := n * kvd
	if cap(r.kf) < size {
		r.kf, r.vf = make([]float32, size), make([]float32, size)
	}
	keysT, vals = r.kf[:size], r.vf[:size]
	for j := range n {
		for i, h := range c.k[li][j*kvd : (j+1)*kvd] {
			keysT[i*n+j] = f16ToF32[h] // i = head·hd + d
		}
	}
	for i, h := range c.v[li][:size] {
		vals[i] = f16ToF32[h]
	}
	return keysT, vals
}

// faTile is GGML_FA_TILE_Q: from this many query rows on, ggml takes the tiled path.
const faTile = 64

// attendF32 is attention in F32 for the query heads in q (heads of hd floats back to back)
// against one KV head up to position pos: its keys transposed (keysT: hd rows of npos
// positions) and its values (row j at vals[j·kvd:], as convertKV lays them out), each score
// row and each weighted sum one kernel call. scratch must hold attendF32Scratch(hd, heads,
// pos+1) floats.
func attendF32(out, q []float32, hd int, keysT []float32, npos int, vals []float32, kvd, pos int, scale float32, scratch []float32) {
	heads, n := len(q)/hd, pos+1
	scores := scratch[hd : hd+heads*n] // head g's scores at [g*n, (g+1)*n)
	for g := range heads {
		sc := scores[g*n : (g+1)*n]
		kernels.VecMat(sc, q[g*hd:(g+1)*hd], keysT, npos)
		maxS := float32(math.Inf(-1))
		for j, s := range sc {
			s *= scale
			sc[j] = s
			maxS = max(maxS, s)
		}
		var sum float32
		for j, s := range sc {
			e := float32(math.Exp(float64(s - maxS)))
			sc[j] = e
			sum += e
		}
		o := out[g*hd : (g+1)*hd]
		kernels.VecMat(o, sc, vals, kvd)
		inv := 1 / sum
		for i := range o {
			o[i] *= inv
		}
	}
}

// attendF32Scratch is the scratch attendF32 needs: hd floats left free, the scores and the sums.
func attendF32Scratch(hd, heads, n int) int { return hd + heads*n + heads }

// attendF16 is ggml's vector flash attention for one query head: the query rounded to F16,
// an online softmax, and the weighted sum of values kept in F16 (rounded after every update,
// as ggml_vec_mad_f16 and ggml_vec_scale_f16 do), on the kernels' half vectors.
func attendF16(out, q []float32, c *KVCache, li, kvh, pos int, scale float32, scratch []float32) {
	hd, kvd := len(q), c.kvDim
	// The query and the accumulator as halves, in the scratch's first hd floats.
	halves := unsafe.Slice((*uint16)(unsafe.Pointer(&scratch[0])), 2*hd)
	acc := halves[hd : 2*hd]
	qh := scratch[2*hd : 3*hd]
	for i, v := range q {
		qh[i] = roundF16(v)
	}
	clear(acc)
	keys, vals := c.k[li], c.v[li]
	var sum float32
	m := float32(math.Inf(-1))
	for j := 0; j <= pos; j++ {
		s := dotF16(qh, keys[j*kvd+kvh*hd:j*kvd+(kvh+1)*hd]) * scale
		ms, vs := float32(1), float32(1)
		if s > m {
			ms = float32(math.Exp(float64(m - s)))
			m = s
			kernels.ScaleF16(acc, ms)
		} else {
			vs = float32(math.Exp(float64(s - m)))
		}
		kernels.MadF16(acc, vals[j*kvd+kvh*hd:j*kvd+(kvh+1)*hd], vs)
		sum = sum*ms + vs
	}
	inv := 1 / sum
	for i := range out {
		out[i] = f16ToF32[acc[i]] * inv
	}
}

// roundF16 rounds x to the nearest half (ties to even), as a float32. Values in the range of
// normal halves are rounded on the float32 bits directly: add half an F16 ulp (less one, plus
// the lowest kept bit, for ties to even) and clear the 13 bits F16 lacks; a carry into the
// exponent is the right result. Others (subnormal halves, overflow, NaN) take the table.
func roundF16(x float32) float32 {
	b := math.Float32bits(x)
	if e := (b >> 23) & 0xff; e >= 127-14 && e <= 127+15 {
		b += 0xfff + (b>>13)&1
		b &^= 0x1fff
		if (b>>23)&0xff <= 127+15 {
			return math.Float32frombits(b)
		}
	}
	return f16ToF32[gguf.Float32ToF16(x)]
}

// dotF16 is the dot product of a float32 vector with a vector of halves.
func dotF16(a []float32, b []uint16) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * f16ToF32[b[i]]
		s1 += a[i+1] * f16ToF32[b[i+1]]
		s2 += a[i+2] * f16ToF32[b[i+2]]
		s3 += a[i+3] * f16ToF32[b[i+3]]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * f16ToF32[b[i]]
	}
	return (s0 + s1) + (s2 + s3)
}

// rmsNorm writes x / sqrt(mean(x²) + eps) * w to dst (which may be x). As in ggml the sum of
// squares is taken in float64 and the scale applied in float32.
func rmsNorm(dst, x, w []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	w = w[:len(x)]
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = (v * scale) * w[i]
	}
}

func addBias(x, b []float32) {
	if b == nil {
		return
	}
	b = b[:len(x)]
	for i := range x {
		x[i] += b[i]
	}
}

// swigluGrain is the SwiGLU's elements per chunk of work: a few microseconds of
// exponentials, well above the cost of handing a chunk out.
const swigluGrain = 2048
