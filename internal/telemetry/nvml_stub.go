//go:build !nvml

package telemetry

import "errors"

// openNVML in the default, static build: go-nvml needs cgo (see the package doc).
func openNVML() (gpuLibrary, error) {
	return nil, errors.New("this binary was built without NVML (the static build); GPU telemetry needs the build tag nvml with CGO_ENABLED=1 (the worker-gpu image)")
}
