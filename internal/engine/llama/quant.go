package llama

import "github.com/neovratz/neovratz/internal/gguf"

// Quantized weight types are served by package kernels once it exists; until then the engine
// runs F32, F16 and BF16 models only.

func quantizedSupported(t gguf.Type) bool { return false }

func quantizedMul(m *matrix, p *pool, out, x []float32, n int) bool { return false }

func dequantizeRow(t gguf.Type, row []byte, dst []float32) {
	panic("llama: dequantizeRow of " + t.String() + " without a kernel")
}
