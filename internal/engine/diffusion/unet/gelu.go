package unet

import (
	"math"
	"sync"

	"github.com/neovratz/neovratz/internal/gguf"
)

// ggml computes GELU by table on the CPU: the input rounded to F16 indexes
// F16 results of the tanh approximation (exact outside ±10).
var (
	geluOnce  sync.Once
	geluTable [1 << 16]float32
)

func gelu(x []float32) {
	geluOnce.Do(func() {
		for i := range 1 << 16 {
			v := float64(gguf.F16ToFloat32(uint16(i)))
			g := 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*v*(1+0.044715*v*v)))
			geluTable[i] = gguf.F16ToFloat32(gguf.Float32ToF16(float32(g)))
		}
	})
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
