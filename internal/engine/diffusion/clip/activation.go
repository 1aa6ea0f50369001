package clip

import (
	"math"
)

// layerNorm normalizes each row of x (width len(w)) in place, with ggml's
// eps of 1e-5 and sums in float64 as ggml_norm keeps them.
func layerNorm(dst, x, w, b []float32) {
	d := len(w)
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := float32(sum / float64(d))
		var sq float64
		for _, v := range row {
			c := v - mean
			sq += float64(c * c)
		}
		scale := float32(1 / math.Sqrt(sq/float64(d)+1e-5))
		out := dst[r : r+d]
		for i, v := range row {
			out[i] = (v-mean)*scale*w[i] + b[i]
		}
	}
}
