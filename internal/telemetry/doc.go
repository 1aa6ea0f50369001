// Package telemetry holds what every neovratz process needs to be observed and that belongs to
// no single component: the metrics registry every process serves (NewRegistry), GPU telemetry
// read through NVML (NewGPUCollector), and Prometheus HTTP service discovery of the live
// workers' metrics addresses (ServiceDiscovery).
//
// NVML and the static binary: github.com/NVIDIA/go-nvml loads libnvidia-ml at run time with
// dlopen, but through cgo, so it does not compile with CGO_ENABLED=0. The default build is
// static and cgo-free; in it NewGPUCollector reports once that GPU telemetry is unavailable and
// serves no GPU metrics. A build with the tag nvml and CGO_ENABLED=1 (the worker-gpu target of
// the Dockerfile) reads the GPUs; that binary links glibc dynamically and still runs on a host
// without a GPU or driver. A pure-Go dlopen (purego) was not taken: it makes the binary
// dynamically linked even with CGO_ENABLED=0, so it would not run on a scratch or distroless
// static image.
package telemetry
