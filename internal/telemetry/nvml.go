//go:build nvml && cgo

package telemetry

import (
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// openNVML loads libnvidia-ml (dlopen, at run time: the binary starts without it) and
// initialises it.
func openNVML() (gpuLibrary, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("load NVML: %w", nvmlError(ret))
	}
	return nvmlLibrary{}, nil
}

// nvmlError turns an NVML return code into an error; ERROR_NOT_SUPPORTED becomes
// errNotSupported.
func nvmlError(ret nvml.Return) error {
	switch ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_NOT_SUPPORTED:
		return errNotSupported
	}
	return errors.New(nvml.ErrorString(ret))
}

// nvmlLibrary is gpuLibrary on go-nvml's package-level (dlopen-loaded) library.
type nvmlLibrary struct{}

func (nvmlLibrary) Devices() ([]gpuDevice, error) {
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("count GPUs: %w", nvmlError(ret))
	}
	devs := make([]gpuDevice, 0, n)
	for i := range n {
		d, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("GPU %d: %w", i, nvmlError(ret))
		}
		devs = append(devs, nvmlDevice{d})
	}
	return devs, nil
}

func (nvmlLibrary) XIDEvents(devs []gpuDevice) (xidSource, error) {
	set, ret := nvml.EventSetCreate()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("create event set: %w", nvmlError(ret))
	}
	registered := 0
	var last error
	for _, d := range devs {
		ret := d.(nvmlDevice).d.RegisterEvents(nvml.EventTypeXidCriticalError, set)
		if ret == nvml.SUCCESS {
			registered++
		} else {
			last = nvmlError(ret)
		}
	}
	if registered == 0 {
		set.Free()
		return nil, fmt.Errorf("register XID events: %w", last)
	}
	return nvmlEvents{set}, nil
}

func (nvmlLibrary) Shutdown() error { return nvmlError(nvml.Shutdown()) }

// nvmlDevice is gpuDevice on an NVML device handle.
type nvmlDevice struct{ d nvml.Device }

func (n nvmlDevice) UUID() (string, error) {
	s, ret := n.d.GetUUID()
	return s, nvmlError(ret)
}

func (n nvmlDevice) Name() (string, error) {
	s, ret := n.d.GetName()
	return s, nvmlError(ret)
}

func (n nvmlDevice) Utilization() (uint32, error) {
	u, ret := n.d.GetUtilizationRates()
	return u.Gpu, nvmlError(ret)
}

func (n nvmlDevice) Memory() (used, total uint64, err error) {
	m, ret := n.d.GetMemoryInfo()
	return m.Used, m.Total, nvmlError(ret)
}

func (n nvmlDevice) Temperature() (uint32, error) {
	t, ret := n.d.GetTemperature(nvml.TEMPERATURE_GPU)
	return t, nvmlError(ret)
}

func (n nvmlDevice) Power() (uint32, error) {
	p, ret := n.d.GetPowerUsage()
	return p, nvmlError(ret)
}

func (n nvmlDevice) SMClock() (uint32, error) {
	c, ret := n.d.GetClockInfo(nvml.CLOCK_SM)
	return c, nvmlError(ret)
}

// nvmlEvents is xidSource on an NVML event set.
type nvmlEvents struct{ set nvml.EventSet }

func (e nvmlEvents) Wait(timeout time.Duration) (xidEvent, bool, error) {
	data, ret := e.set.Wait(uint32(timeout.Milliseconds()))
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_TIMEOUT:
		return xidEvent{}, false, nil
	default:
		return xidEvent{}, false, nvmlError(ret)
	}
	if data.EventType != nvml.EventTypeXidCriticalError {
		return xidEvent{}, false, nil
	}
	uuid, ret := data.Device.GetUUID()
	if ret != nvml.SUCCESS {
		uuid = "unknown"
	}
	return xidEvent{UUID: uuid, XID: data.EventData}, true, nil
}

func (e nvmlEvents) Close() error { return nvmlError(e.set.Free()) }
