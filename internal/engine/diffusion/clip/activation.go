package clip

import (
	"math"
	"sync"

	"github.com/neovratz/neovratz/internal/gguf"
)

// ggml's CPU backend, whose images the engine is checked against, computes
// GELU and quick GELU by table: the input rounded to F16 indexes a table of
// F16 results. Emulating that keeps the encoder's output as close to
// stable-diffusion.cpp's as the F16 products already are.
var (
	geluOnce   sync.Once
	geluTable  [1 << 16]float32 // tanh-approximated GELU (ggml_gelu)
	quickTable [1 << 16]float32 // x·σ(1.702x) (ggml_gelu_quick)
)

func initGELU() {
	for i := range 1 << 16 {
		x := float64(gguf.F16ToFloat32(uint16(i)))
		g := 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*x*(1+0.044715*x*x)))
		q := x / (1 + math.Exp(-1.702*x))
		geluTable[i] = gguf.F16ToFloat32(gguf.Float32ToF16(float32(g)))
		quickTable[i] = gguf.F16ToFloat32(gguf.Float32ToF16(float32(q)))
	}
}

// gelu applies ggml_gelu in place: exact at the ends, by table between.
func gelu(x []float32) {
	geluOnce.Do(initGELU)
	for i, v := range x {
		switch {
		case v <= -10:
			x[i] = 0
		case v >= 10:
		default:
			x[i] = geluTable[gguf.Float32ToF16(v)]
		}
	}
}

// quickGELU applies ggml_gelu_quick (CLIP ViT-L's activation) in place.
func quickGELU(x []float32) {
	geluOnce.Do(initGELU)
	for i, v := range x {
		x[i] = quickTable[gguf.Float32ToF16(v)]
	}
}

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
