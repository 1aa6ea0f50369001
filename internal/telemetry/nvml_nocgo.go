//go:build nvml && !cgo

package telemetry

// The nvml build tag needs cgo, because go-nvml calls NVML through cgo. The undefined name
// below makes such a build fail with the reason in its message instead of silently building
// without GPU telemetry.
var _ = nvml_build_tag_needs_CGO_ENABLED_1
