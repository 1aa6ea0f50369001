package modelstore

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// fileTypes names the values of general.file_type, llama.cpp's enum llama_ftype: the
// quantization recipe a file was made with ("Q4_K_M" mixes Q4_K and Q6_K tensors, which the
// tensor types alone cannot tell from Q4_K_S). Retired numbers have no entry.
var fileTypes = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
	38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}

// fileTypeName returns the name of a general.file_type value.
func fileTypeName(ft uint64) (string, bool) {
	name, ok := fileTypes[ft]
	return name, ok
}

// dominantType returns the tensor type holding the most bytes among the matrices (tensors of two
// or more dimensions): what a file without general.file_type is quantized to. Vectors (norms,
// biases) are left out because converters keep them in F32 whatever the recipe.
func dominantType(tensors []gguf.TensorInfo) string {
	bytes := map[gguf.Type]uint64{}
	for _, t := range tensors {
		if len(t.Dims) >= 2 {
			bytes[t.Type] += t.Size
		}
	}
	best, most := gguf.Type(0), uint64(0)
	for typ, n := range bytes {
		if n > most || n == most && typ < best { // ties broken by number, so the answer is stable
			best, most = typ, n
		}
	}
	if most == 0 {
		return ""
	}
	return best.String()
}

// formatParams writes a parameter count the way model cards do: 494M, 7.6B.
func formatParams(n uint64) string {
	switch {
	case n == 0:
		return ""
	case n >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/1e9)) + "B"
	case n >= 1e6:
		return trimZero(fmt.Sprintf("%.0f", float64(n)/1e6)) + "M"
	case n >= 1e3:
		return trimZero(fmt.Sprintf("%.0f", float64(n)/1e3)) + "K"
	}
	return fmt.Sprint(n)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
