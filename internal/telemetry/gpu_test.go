package telemetry

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The GPU path cannot run on the machines that run this suite: none has a GPU or an NVIDIA
// driver. So the mapping from NVML readings to metrics is tested with fakes of gpuLibrary and
// gpuDevice (the interface nvml.go implements on go-nvml), and the path without NVML is tested
// for real, with NewGPUCollector.

type fakeDevice struct {
	uuid, name  string
	util        uint32
	used, total uint64
	temp        uint32
	milliwatts  uint32
	mhz         uint32
	errPower    error // returned by Power when set
	errTemp     error // returned by Temperature when set
}

func (d *fakeDevice) UUID() (string, error)                 { return d.uuid, nil }
func (d *fakeDevice) Name() (string, error)                 { return d.name, nil }
func (d *fakeDevice) Utilization() (uint32, error)          { return d.util, nil }
func (d *fakeDevice) Memory() (uint64, uint64, error)       { return d.used, d.total, nil }
func (d *fakeDevice) SMClock() (uint32, error)              { return d.mhz, nil }
func (d *fakeDevice) Temperature() (uint32, error)          { return d.temp, d.errTemp }
func (d *fakeDevice) Power() (milliwatts uint32, err error) { return d.milliwatts, d.errPower }

type fakeLibrary struct {
	devs      []gpuDevice
	devsErr   error
	events    *fakeEvents // nil: XIDEvents fails
	mu        sync.Mutex
	shutdowns int
}

func (l *fakeLibrary) Devices() ([]gpuDevice, error) { return l.devs, l.devsErr }
func (l *fakeLibrary) XIDEvents([]gpuDevice) (xidSource, error) {
	if l.events == nil {
		return nil, errors.New("events not supported")
	}
	return l.events, nil
}
func (l *fakeLibrary) Shutdown() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shutdowns++
	return nil
}

// fakeEvents hands out the events sent on ch, as NVML's event set hands out driver events.
type fakeEvents struct {
	ch     chan xidEvent
	closed chan struct{}
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{ch: make(chan xidEvent), closed: make(chan struct{})}
}

func (e *fakeEvents) Wait(timeout time.Duration) (xidEvent, bool, error) {
	select {
	case ev := <-e.ch:
		return ev, true, nil
	case <-time.After(timeout):
		return xidEvent{}, false, nil
	}
}

func (e *fakeEvents) Close() error { close(e.closed); return nil }

func h100(uuid string) *fakeDevice {
	return &fakeDevice{uuid: uuid, name: "NVIDIA H100 80GB HBM3", util: 87, used: 70 << 30, total: 80 << 30,
		temp: 64, milliwatts: 412_500, mhz: 1980}
}

func TestGPUCollectorMetrics(t *testing.T) {
	a := h100("GPU-aaaa")
	b := h100("GPU-bbbb")
	b.util, b.errPower, b.errTemp = 0, errNotSupported, errors.New("GPU is lost")
	events := newFakeEvents()
	lib := &fakeLibrary{devs: []gpuDevice{a, b}, events: events}
	var logs bytes.Buffer
	c := newGPUCollector(lib, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	defer c.Close()
	if !c.Available() {
		t.Fatal("collector with two GPUs is not available")
	}

	events.ch <- xidEvent{UUID: "GPU-bbbb", XID: 79} // 79: GPU has fallen off the bus
	events.ch <- xidEvent{UUID: "GPU-bbbb", XID: 48} // 48: double-bit ECC error
	waitFor(t, func() bool { return testutil.ToFloat64(xidCounter(c, "1")) == 2 })

	want := `
# HELP neovratz_gpu_info A GPU NVML sees on this host (always 1), with its product name.
# TYPE neovratz_gpu_info gauge
neovratz_gpu_info{gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-aaaa"} 1
neovratz_gpu_info{gpu="1",name="NVIDIA H100 80GB HBM3",uuid="GPU-bbbb"} 1
# HELP neovratz_gpu_last_xid Code of the last XID error since this process started (0: none); see NVIDIA's XID catalogue.
# TYPE neovratz_gpu_last_xid gauge
neovratz_gpu_last_xid{gpu="0",uuid="GPU-aaaa"} 0
neovratz_gpu_last_xid{gpu="1",uuid="GPU-bbbb"} 48
# HELP neovratz_gpu_memory_total_bytes GPU memory installed.
# TYPE neovratz_gpu_memory_total_bytes gauge
neovratz_gpu_memory_total_bytes{gpu="0",uuid="GPU-aaaa"} 8.589934592e+10
neovratz_gpu_memory_total_bytes{gpu="1",uuid="GPU-bbbb"} 8.589934592e+10
# HELP neovratz_gpu_memory_used_bytes GPU memory allocated by all processes.
# TYPE neovratz_gpu_memory_used_bytes gauge
neovratz_gpu_memory_used_bytes{gpu="0",uuid="GPU-aaaa"} 7.516192768e+10
neovratz_gpu_memory_used_bytes{gpu="1",uuid="GPU-bbbb"} 7.516192768e+10
# HELP neovratz_gpu_power_watts Power the GPU board draws.
# TYPE neovratz_gpu_power_watts gauge
neovratz_gpu_power_watts{gpu="0",uuid="GPU-aaaa"} 412.5
# HELP neovratz_gpu_sm_clock_hertz Current clock of the GPU's streaming multiprocessors.
# TYPE neovratz_gpu_sm_clock_hertz gauge
neovratz_gpu_sm_clock_hertz{gpu="0",uuid="GPU-aaaa"} 1.98e+09
neovratz_gpu_sm_clock_hertz{gpu="1",uuid="GPU-bbbb"} 1.98e+09
# HELP neovratz_gpu_temperature_celsius GPU die temperature.
# TYPE neovratz_gpu_temperature_celsius gauge
neovratz_gpu_temperature_celsius{gpu="0",uuid="GPU-aaaa"} 64
# HELP neovratz_gpu_utilization_ratio Fraction of the last sample period (1/6 s to 1 s) in which a kernel ran on the GPU.
# TYPE neovratz_gpu_utilization_ratio gauge
neovratz_gpu_utilization_ratio{gpu="0",uuid="GPU-aaaa"} 0.87
neovratz_gpu_utilization_ratio{gpu="1",uuid="GPU-bbbb"} 0
# HELP neovratz_gpu_xid_errors_total XID errors (GPU faults the driver reported) since this process started.
# TYPE neovratz_gpu_xid_errors_total counter
neovratz_gpu_xid_errors_total{gpu="0",uuid="GPU-aaaa"} 0
neovratz_gpu_xid_errors_total{gpu="1",uuid="GPU-bbbb"} 2
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	// Twice: the failing temperature reading is logged once, not at every scrape.
	for range 2 {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "read GPU temperature"); n != 1 {
		t.Errorf("temperature error logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "read GPU power") {
		t.Errorf("an unsupported reading was logged as an error:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "xid=79") {
		t.Errorf("XID 79 not logged:\n%s", logs.String())
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-events.closed:
	default:
		t.Error("Close left the XID event set open")
	}
	if err := c.Close(); err != nil || lib.shutdowns != 1 {
		t.Errorf("second Close: err %v, NVML shut down %d times; want nil, 1", err, lib.shutdowns)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("closed collector collected %d metrics, want 0", n)
	}
}

// xidCounter is the XID counter of one GPU, as a collector of its own for testutil.ToFloat64.
func xidCounter(c *GPUCollector, index string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		for _, g := range c.gpus {
			if g.index == index {
				c.mu.Lock()
				n := c.xids[g.uuid]
				c.mu.Unlock()
				ch <- prometheus.MustNewConstMetric(descGPUXIDs, prometheus.CounterValue, float64(n), g.index, g.uuid)
			}
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGPUCollectorWithoutXIDEvents(t *testing.T) {
	var logs bytes.Buffer
	c := newGPUCollector(&fakeLibrary{devs: []gpuDevice{h100("GPU-aaaa")}}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	defer c.Close()
	if !strings.Contains(logs.String(), "XID errors will not be counted") {
		t.Errorf("missing warning:\n%s", logs.String())
	}
	// Everything else is still served, the XID counter at 0.
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP neovratz_gpu_xid_errors_total XID errors (GPU faults the driver reported) since this process started.
# TYPE neovratz_gpu_xid_errors_total counter
neovratz_gpu_xid_errors_total{gpu="0",uuid="GPU-aaaa"} 0
`), "neovratz_gpu_xid_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 9 {
		t.Errorf("collected %d metrics, want 9", n)
	}
}

func TestGPUCollectorUnavailable(t *testing.T) {
	tests := []struct {
		name      string
		lib       *fakeLibrary
		openErr   error
		reason    string
		shutdowns int
	}{
		{"no NVML", nil, errors.New("load NVML: ERROR_LIBRARY_NOT_FOUND"), "ERROR_LIBRARY_NOT_FOUND", 0},
		{"no GPU", &fakeLibrary{}, nil, "NVML sees no GPU", 1},
		{"devices fail", &fakeLibrary{devsErr: errors.New("driver mismatch")}, nil, "driver mismatch", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			var lib gpuLibrary
			if tt.lib != nil {
				lib = tt.lib
			}
			c := newGPUCollector(lib, tt.openErr, slog.New(slog.NewTextHandler(&logs, nil)))
			checkUnavailable(t, c, &logs, tt.reason)
			if tt.lib != nil && tt.lib.shutdowns != tt.shutdowns {
				t.Errorf("NVML shut down %d times, want %d", tt.lib.shutdowns, tt.shutdowns)
			}
		})
	}
}

// TestNewGPUCollector runs the real constructor. In the default (static) build, and with the
// nvml tag on a machine without an NVIDIA driver, GPU telemetry is unavailable: it says so
// once and serves nothing. With the nvml tag on a GPU host it must serve every GPU metric.
func TestNewGPUCollector(t *testing.T) {
	var logs bytes.Buffer
	c := NewGPUCollector(slog.New(slog.NewTextHandler(&logs, nil)))
	if c.Available() {
		defer c.Close()
		t.Logf("GPUs found: %s", logs.String())
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, mf := range mfs {
			got[mf.GetName()] = true
		}
		for _, name := range []string{"neovratz_gpu_info", "neovratz_gpu_memory_total_bytes", "neovratz_gpu_memory_used_bytes", "neovratz_gpu_xid_errors_total"} {
			if !got[name] {
				t.Errorf("GPU host serves no %s", name)
			}
		}
		return
	}
	checkUnavailable(t, c, &logs, "")
}

func checkUnavailable(t *testing.T, c *GPUCollector, logs *bytes.Buffer, reason string) {
	t.Helper()
	if c.Available() {
		t.Fatal("collector is available")
	}
	if n := strings.Count(logs.String(), "GPU telemetry unavailable"); n != 1 {
		t.Errorf("unavailability logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), reason) {
		t.Errorf("log does not give the reason %q:\n%s", reason, logs.String())
	}
	// Registering must work (an unchecked collector), and a scrape must serve nothing of it.
	reg := NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "neovratz_gpu_") {
			t.Errorf("unavailable collector serves %s", mf.GetName())
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := strings.Count(logs.String(), "GPU telemetry unavailable"); n != 1 {
		t.Errorf("unavailability logged %d times after scrapes, want once", n)
	}
}

func TestGPUMetricNames(t *testing.T) {
	c := newGPUCollector(&fakeLibrary{devs: []gpuDevice{h100("GPU-aaaa")}}, nil, nil)
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	want := GPUMetricNames()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("collected %v, GPUMetricNames %v", got, want)
	}
}
