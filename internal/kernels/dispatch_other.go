//go:build !amd64

package kernels

// No SIMD kernels outside amd64: the pure-Go ones serve.
const (
	simdAvailable = false
	simdName      = "generic"
)

func installSIMD(*kernelTable) {}
