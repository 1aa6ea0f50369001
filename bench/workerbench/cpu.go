package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system) process pid has used, from /proc (Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its ')' are fixed.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// selfCPU is the CPU time of this process (the load generator).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSample is the CPU time of every process taking part, by name.
type cpuSample map[string]time.Duration

// sampleCPU reads the CPU time of the deployment's processes, Redis (pid, 0 = none) and this
// process.
func sampleCPU(d *deployment, redisPID int) cpuSample {
	s := cpuSample{"client": selfCPU()}
	for _, p := range d.procs {
		if t, err := procCPU(p.cmd.Process.Pid); err == nil {
			s[p.name] += t
		}
	}
	if redisPID > 0 {
		if t, err := procCPU(redisPID); err == nil {
			s["redis"] = t
		}
	}
	return s
}

// perRequest formats the CPU each process spent per request between two samples, and the cores
// they kept busy together.
func perRequest(before, after cpuSample, requests int, window time.Duration) (string, float64) {
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	var total time.Duration
	for _, n := range names {
		d := after[n] - before[n]
		total += d
		if requests > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", n, float64(d)/float64(time.Millisecond)/float64(requests)))
		}
	}
	return strings.Join(parts, ", "), total.Seconds() / window.Seconds()
}
