package kernels

// The attention of a long prompt multiplies each query head by every key and sums the values
// weighted by the scores. Done a key at a time (Dot, Axpy) the calls cost more than their
// arithmetic at head sizes of 64; VecMat takes a head's whole row of keys or values in one
// call.

// VecMat sets out[j] = Σ_d a[d]·m[d·stride+j] for j < len(out): the vector a times the matrix m
// (len(a) rows of stride floats), summed over d in order from zero, as Axpy(a[d], row d, out)
// for each d over a cleared out computes it. len(out) ≤ stride.
//
// Attention uses it twice per head: the scores are the query times the keys laid out
// transposed (a row per dimension, a column per position), the output is the scores times
// the values (a row per position).
func VecMat(out, a, m []float32, stride int) {
	if len(a) == 0 || len(out) == 0 {
		clear(out)
		return
	}
	_ = m[(len(a)-1)*stride+len(out)-1]
	floatOps.vecMat(out, a, m, stride)
}

func vecMatGeneric(out, a, m []float32, stride int) {
	clear(out)
	for d, w := range a {
		axpyGeneric(w, m[d*stride:d*stride+len(out)], out)
	}
}
