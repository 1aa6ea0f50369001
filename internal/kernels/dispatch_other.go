//go:build !amd64

package kernels

// No SIMD kernels outside amd64: the pure-Go ones serve.
const (
	simdAvailable = false
	simdName      = "generic"
)

func installSIMD(*kernelTable) {}

// Nor int8 GEMM kernels.
const (
	gemmAvailable = false
	gemmName      = ""
)

func installGEMM(*kernelTable) {}
