package kernels

import (
	"fmt"
	"math"
	"testing"
)

// TestVecMat checks the attention kernel with and without SIMD, over sizes with and without
// tails of fewer than 8, in both layouts attention gives it (keys transposed: few rows, many
// columns; values: many rows, a head's width of columns): against float64 sums within float32
// rounding of the sum of magnitudes, and bit for bit against what Axpy row after row gives.
func TestVecMat(t *testing.T) {
	r := rng(5)
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = r.normalish()
		}
		return x
	}
	for _, simd := range []bool{true, false} {
		for _, hd := range []int{5, 64, 128} {
			for _, n := range []int{1, 7, 8, 33, 100} {
				for _, shape := range []struct {
					name          string
					rows, columns int
				}{{"keys", hd, n}, {"values", n, hd}} {
					name := fmt.Sprintf("simd=%v/hd=%d/n=%d/%s", simd, hd, n, shape.name)
					stride := shape.columns + 3
					a, m := fill(shape.rows), fill(shape.rows*stride)
					out, axpys := make([]float32, shape.columns), make([]float32, shape.columns)
					run := func() {
						VecMat(out, a, m, stride)
						for d := range a {
							Axpy(a[d], m[d*stride:d*stride+len(axpys)], axpys)
						}
					}
					if simd {
						run()
					} else {
						withGeneric(t, run)
					}
					for j := range out {
						var want, mag float64
						for d := range a {
							want += float64(a[d]) * float64(m[d*stride+j])
							mag += math.Abs(float64(a[d]) * float64(m[d*stride+j]))
						}
						if math.Abs(float64(out[j])-want) > mag*float64(len(a))*6e-8 {
							t.Fatalf("%s: VecMat[%d] = %v, float64 %v", name, j, out[j], want)
						}
						if math.Float32bits(out[j]) != math.Float32bits(axpys[j]) {
							t.Fatalf("%s: VecMat[%d] = %v, Axpy row by row %v", name, j, out[j], axpys[j])
						}
					}
				}
			}
		}
	}
	// Empty inputs clear the output.
	out := []float32{1, 2}
	VecMat(out, nil, nil, 2)
	if out[0] != 0 || out[1] != 0 {
		t.Errorf("an empty product left %v", out)
	}
}
