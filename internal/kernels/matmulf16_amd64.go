package kernels

import "unsafe"

func init() {
	if simdAvailable {
		dotF16x3 = dotF16x3Row
		roundF16 = func(dst, x []float32) { roundF16AVX2(&dst[0], &x[0], len(x)) }
	}
}

//go:noescape
func dotF16F32x3AVX2(w *byte, a *float32, stride, n int, out *[3]float32)

//go:noescape
func roundF16AVX2(dst, x *float32, n int)

// dotF16x3Row is dotF16RowAVX2 for three activation rows in float32: the
// same four accumulators per row and the same reduction, the tail added in
// float64.
func dotF16x3Row(n int, w []byte, a []float32, stride int, out *[3]float32) {
	np := n &^ 31
	*out = [3]float32{}
	if np > 0 {
		_ = a[2*stride+np-1]
		_ = w[2*np-1]
		dotF16F32x3AVX2(&w[0], &a[0], stride*int(unsafe.Sizeof(float32(0))), np, out)
	}
	if np == n {
		return
	}
	for k := range 3 {
		row := a[k*stride : k*stride+n]
		s := float64(out[k])
		for i := np; i < n; i++ {
			s += float64(f16(w[2*i:]) * row[i])
		}
		out[k] = float32(s)
	}
}
