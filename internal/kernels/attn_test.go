package kernels

import (
	"fmt"
	"math"
	"testing"
)

// TestDotsTAndWeightedSum checks both attention kernels against float64 sums (within float32
// rounding of the sum of magnitudes), with and without SIMD, over sizes with and without tails
// of fewer than 8; and WeightedSum bit for bit against what Axpy row after row gives.
func TestDotsTAndWeightedSum(t *testing.T) {
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
				name := fmt.Sprintf("simd=%v/hd=%d/n=%d", simd, hd, n)
				stride := n + 3
				q, kT := fill(hd), fill(hd*stride)
				p, v := fill(n), fill(n*(hd+2))
				dots, sums := make([]float32, n), make([]float32, hd)
				var axpys []float32
				run := func() {
					DotsT(dots, q, kT, stride)
					WeightedSum(sums, p, v, hd+2)
					axpys = make([]float32, hd)
					for j := range p {
						Axpy(p[j], v[j*(hd+2):j*(hd+2)+hd], axpys)
					}
				}
				if simd {
					run()
				} else {
					withGeneric(t, run)
				}
				for j := range dots {
					var want, mag float64
					for d := range q {
						want += float64(q[d]) * float64(kT[d*stride+j])
						mag += math.Abs(float64(q[d]) * float64(kT[d*stride+j]))
					}
					if math.Abs(float64(dots[j])-want) > mag*float64(hd)*6e-8 {
						t.Fatalf("%s: DotsT[%d] = %v, float64 %v", name, j, dots[j], want)
					}
				}
				for i := range sums {
					if math.Float32bits(sums[i]) != math.Float32bits(axpys[i]) {
						t.Fatalf("%s: WeightedSum[%d] = %v, Axpy row by row %v", name, i, sums[i], axpys[i])
					}
				}
			}
		}
	}
	// Empty inputs clear the output.
	out := []float32{1, 2}
	DotsT(out, nil, nil, 2)
	WeightedSum(out[:1], nil, nil, 1)
	if out[0] != 0 || out[1] != 0 {
		t.Errorf("empty products left %v", out)
	}
}
