package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gpuLibrary is the part of NVML the GPU collector uses. The nvml build implements it with
// go-nvml (nvml.go); tests implement it with a fake, because no machine that runs the test
// suite has a GPU.
type gpuLibrary interface {
	// Devices returns the GPUs NVML sees, in index order.
	Devices() ([]gpuDevice, error)
	// XIDEvents returns a source of the devices' XID error events, or an error when the
	// driver reports none (some virtualised GPUs).
	XIDEvents(devs []gpuDevice) (xidSource, error)
	// Shutdown releases the library.
	Shutdown() error
}

// gpuDevice is one GPU. Each reading may fail with errNotSupported (the GPU does not report
// it, like power on some boards): the collector then leaves that metric out for that GPU.
type gpuDevice interface {
	UUID() (string, error)
	Name() (string, error)
	Utilization() (percent uint32, err error) // of the last sample period, 0-100
	Memory() (used, total uint64, err error)  // bytes
	Temperature() (celsius uint32, err error) // GPU die
	Power() (milliwatts uint32, err error)
	SMClock() (mhz uint32, err error)
}

// xidSource delivers XID errors: the driver's reports of GPU faults (a fallen-off-the-bus GPU,
// uncorrectable ECC errors, a crashed engine context) that the metrics alone do not show.
type xidSource interface {
	// Wait blocks up to timeout for the next event; ok is false when none came.
	Wait(timeout time.Duration) (ev xidEvent, ok bool, err error)
	Close() error
}

// xidEvent is one XID error of the GPU with the given UUID.
type xidEvent struct {
	UUID string
	XID  uint64
}

// errNotSupported is what a gpuDevice reading returns for something the GPU does not report.
var errNotSupported = errors.New("not supported by this GPU")

// The GPU metrics. Labels: gpu (the NVML index) and uuid (stable across reboots and index
// changes); both are bounded by the GPUs of the host.
var (
	gpuLabels   = []string{"gpu", "uuid"}
	descGPUInfo = gpuDesc("neovratz_gpu_info",
		"A GPU NVML sees on this host (always 1), with its product name.", []string{"gpu", "uuid", "name"})
	descGPUUtil = gpuDesc("neovratz_gpu_utilization_ratio",
		"Fraction of the last sample period (1/6 s to 1 s) in which a kernel ran on the GPU.", gpuLabels)
	descGPUMemUsed = gpuDesc("neovratz_gpu_memory_used_bytes",
		"GPU memory allocated by all processes.", gpuLabels)
	descGPUMemTotal = gpuDesc("neovratz_gpu_memory_total_bytes",
		"GPU memory installed.", gpuLabels)
	descGPUTemp = gpuDesc("neovratz_gpu_temperature_celsius",
		"GPU die temperature.", gpuLabels)
	descGPUPower = gpuDesc("neovratz_gpu_power_watts",
		"Power the GPU board draws.", gpuLabels)
	descGPUSMClock = gpuDesc("neovratz_gpu_sm_clock_hertz",
		"Current clock of the GPU's streaming multiprocessors.", gpuLabels)
	descGPUXIDs = gpuDesc("neovratz_gpu_xid_errors_total",
		"XID errors (GPU faults the driver reported) since this process started.", gpuLabels)
	descGPULastXID = gpuDesc("neovratz_gpu_last_xid",
		"Code of the last XID error since this process started (0: none); see NVIDIA's XID catalogue.", gpuLabels)

	gpuDescs = []*prometheus.Desc{descGPUInfo, descGPUUtil, descGPUMemUsed, descGPUMemTotal, descGPUTemp,
		descGPUPower, descGPUSMClock, descGPUXIDs, descGPULastXID}
)

// gpuMetricNames lists the names given to gpuDesc, in order.
var gpuMetricNames []string

func gpuDesc(name, help string, labels []string) *prometheus.Desc {
	gpuMetricNames = append(gpuMetricNames, name)
	return prometheus.NewDesc(name, help, labels, nil)
}

// GPUMetricNames returns the names of the metrics a GPUCollector serves on a host with GPUs,
// so that dashboards and alerts can be checked against them on machines without a GPU.
func GPUMetricNames() []string { return slices.Clone(gpuMetricNames) }

// gpu is a device the collector found at start, with its fixed labels.
type gpu struct {
	index string
	uuid  string
	name  string
	dev   gpuDevice
}

// GPUCollector is a prometheus.Collector of NVML GPU telemetry, read at scrape time. Without
// NVML (the static build, a host without a driver) or without GPUs it logged that once when it
// was made and collects nothing. Close it to stop its XID watcher and release NVML.
type GPUCollector struct {
	lib    gpuLibrary
	gpus   []gpu
	logger *slog.Logger

	mu      sync.Mutex
	xids    map[string]uint64 // uuid → XID errors seen
	lastXID map[string]uint64 // uuid → code of the last one
	warned  map[string]bool   // "uuid/reading" → an error was logged already

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool // after Close, Collect reads nothing: NVML is shut down
}

var _ prometheus.Collector = (*GPUCollector)(nil)

// NewGPUCollector opens NVML and returns a collector of every GPU it sees. It never fails: a
// process without GPU telemetry logs the reason once, at info level, and serves everything
// else as usual.
func NewGPUCollector(logger *slog.Logger) *GPUCollector {
	lib, err := openNVML()
	return newGPUCollector(lib, err, logger)
}

// newGPUCollector builds the collector on lib, or an empty one when openErr is set.
func newGPUCollector(lib gpuLibrary, openErr error, logger *slog.Logger) *GPUCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &GPUCollector{logger: logger, xids: map[string]uint64{}, lastXID: map[string]uint64{}, warned: map[string]bool{}}
	if openErr != nil {
		logger.Info("GPU telemetry unavailable", "reason", openErr.Error())
		return c
	}
	devs, err := lib.Devices()
	if err == nil && len(devs) == 0 {
		err = errors.New("NVML sees no GPU")
	}
	if err == nil {
		c.gpus, err = describeGPUs(devs)
	}
	if err != nil {
		logger.Info("GPU telemetry unavailable", "reason", err.Error())
		c.gpus = nil
		if serr := lib.Shutdown(); serr != nil {
			logger.Warn("shut down NVML", "err", serr)
		}
		return c
	}
	c.lib = lib
	names := make([]string, len(c.gpus))
	for i, g := range c.gpus {
		names[i] = g.name
	}
	logger.Info("GPU telemetry on", "gpus", len(c.gpus), "names", names)

	src, err := lib.XIDEvents(devs)
	if err != nil {
		logger.Warn("GPU XID errors will not be counted", "err", err)
		return c
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.watchXIDs(src)
	return c
}

// describeGPUs reads the fixed facts of each device once.
func describeGPUs(devs []gpuDevice) ([]gpu, error) {
	gpus := make([]gpu, len(devs))
	for i, d := range devs {
		uuid, err := d.UUID()
		if err != nil {
			return nil, fmt.Errorf("GPU %d: uuid: %w", i, err)
		}
		name, err := d.Name()
		if err != nil {
			name = "unknown"
		}
		gpus[i] = gpu{index: strconv.Itoa(i), uuid: uuid, name: name, dev: d}
	}
	return gpus, nil
}

// xidWait is how long one wait for XID events blocks: it bounds how long Close waits.
const xidWait = 500 * time.Millisecond

// watchXIDs counts XID events until Close.
func (c *GPUCollector) watchXIDs(src xidSource) {
	defer close(c.done)
	defer src.Close()
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		ev, ok, err := src.Wait(xidWait)
		switch {
		case err != nil:
			c.warnOnce("xid", "wait for GPU XID events", err)
			// Do not spin on a broken event set.
			select {
			case <-c.stop:
				return
			case <-time.After(5 * time.Second):
			}
		case ok:
			c.mu.Lock()
			c.xids[ev.UUID]++
			c.lastXID[ev.UUID] = ev.XID
			c.mu.Unlock()
			c.logger.Error("GPU XID error", "uuid", ev.UUID, "xid", ev.XID)
		}
	}
}

// Available reports whether the collector serves GPU metrics.
func (c *GPUCollector) Available() bool { return len(c.gpus) > 0 }

// Describe sends the GPU metrics' descriptions, or nothing when GPU telemetry is unavailable
// (an unchecked collector, so registering it never fails for lack of a GPU).
func (c *GPUCollector) Describe(ch chan<- *prometheus.Desc) {
	if !c.Available() {
		return
	}
	for _, d := range gpuDescs {
		ch <- d
	}
}

// Collect reads every GPU now. A reading that fails is left out of this scrape (and logged
// once per GPU and reading), so one unsupported sensor never fails the whole scrape.
func (c *GPUCollector) Collect(ch chan<- prometheus.Metric) {
	if c.closed.Load() {
		return
	}
	for _, g := range c.gpus {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, g.index, g.uuid)
		}
		ch <- prometheus.MustNewConstMetric(descGPUInfo, prometheus.GaugeValue, 1, g.index, g.uuid, g.name)
		if pct, err := g.dev.Utilization(); c.ok(g, "utilization", err) {
			gauge(descGPUUtil, float64(pct)/100)
		}
		if used, total, err := g.dev.Memory(); c.ok(g, "memory", err) {
			gauge(descGPUMemUsed, float64(used))
			gauge(descGPUMemTotal, float64(total))
		}
		if t, err := g.dev.Temperature(); c.ok(g, "temperature", err) {
			gauge(descGPUTemp, float64(t))
		}
		if mw, err := g.dev.Power(); c.ok(g, "power", err) {
			gauge(descGPUPower, float64(mw)/1000)
		}
		if mhz, err := g.dev.SMClock(); c.ok(g, "sm_clock", err) {
			gauge(descGPUSMClock, float64(mhz)*1e6)
		}
		c.mu.Lock()
		n, last := c.xids[g.uuid], c.lastXID[g.uuid]
		c.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descGPUXIDs, prometheus.CounterValue, float64(n), g.index, g.uuid)
		gauge(descGPULastXID, float64(last))
	}
}

// ok reports whether a reading succeeded, logging the first failure of each GPU and reading
// other than "not supported".
func (c *GPUCollector) ok(g gpu, reading string, err error) bool {
	if err == nil {
		return true
	}
	if !errors.Is(err, errNotSupported) {
		c.warnOnce(g.uuid+"/"+reading, "read GPU "+reading, err, "gpu", g.index, "uuid", g.uuid)
	}
	return false
}

func (c *GPUCollector) warnOnce(key, msg string, err error, attrs ...any) {
	c.mu.Lock()
	seen := c.warned[key]
	c.warned[key] = true
	c.mu.Unlock()
	if !seen {
		c.logger.Warn(msg, append(attrs, "err", err)...)
	}
}

// Close stops the XID watcher and releases NVML. It is safe to call more than once.
func (c *GPUCollector) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.stop != nil {
			close(c.stop)
			<-c.done
		}
		if c.lib != nil {
			err = c.lib.Shutdown()
		}
	})
	return err
}
