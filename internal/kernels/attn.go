package kernels

// The attention of a long prompt multiplies each query head by every key and sums the values
// weighted by the scores. Done a key at a time (Dot, Axpy) the calls cost more than their
// arithmetic at head sizes of 64; these two kernels take a head's whole row of keys or values
// in one call.

// DotsT sets out[j] = Σ_d q[d]·kT[d·stride+j] for j < len(out): the dot products of q with
// len(out) vectors laid out as the columns of kT (len(q) rows of stride floats, keys
// transposed), summed over d in order from zero. len(out) ≤ stride.
func DotsT(out, q, kT []float32, stride int) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = kT[(len(q)-1)*stride+len(out)-1]
	floatOps.dotsT(out, q, kT, stride)
}

// WeightedSum sets out[i] = Σ_j p[j]·v[j·stride+i] for i < len(out): the rows of v (len(p)
// rows of stride floats) weighted by p, summed in order from zero, as Axpy(p[j], row j, out)
// for each j over a cleared out computes it. len(out) ≤ stride.
func WeightedSum(out, p, v []float32, stride int) {
	if len(p) == 0 || len(out) == 0 {
		clear(out)
		return
	}
	_ = v[(len(p)-1)*stride+len(out)-1]
	floatOps.weightedSum(out, p, v, stride)
}

func dotsTGeneric(out, q, kT []float32, stride int) {
	for j := range out {
		var s float32
		for d, x := range q {
			s += x * kT[d*stride+j]
		}
		out[j] = s
	}
}

func weightedSumGeneric(out, p, v []float32, stride int) {
	clear(out)
	for j, w := range p {
		axpyGeneric(w, v[j*stride:j*stride+len(out)], out)
	}
}
