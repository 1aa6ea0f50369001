package nn

import (
	"math"
	"sync"

	"github.com/neovratz/neovratz/internal/gguf"
)

// ggml's CPU backend, whose images the engine is checked against, computes GELU and quick GELU
// by table: the input rounded to F16 indexes a table of F16 results. Emulating that keeps the
// text encoder's and the UNet's outputs as close to stable-diffusion.cpp's as the F16 products
// already are.
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

// GELU applies ggml_gelu in place: exact outside ±10, by table between.
func GELU(x []float32) {
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

// QuickGELU applies ggml_gelu_quick (CLIP ViT-L's activation) in place.
func QuickGELU(x []float32) {
	geluOnce.Do(initGELU)
	for i, v := range x {
		x[i] = quickTable[gguf.Float32ToF16(v)]
	}
}
