package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Targets from the issue, for the Redis broker with one-at-a-time reservation.
const (
	targetRatio = 3.0
	targetP50   = 2 * time.Millisecond
)

// summary is a subject's medians across runs.
type summary struct {
	subject              subject
	jobsPerSec           float64
	p50, p99, max        time.Duration
	roundTrips, redisCPU float64
	benchCPU             float64
	ratios               []float64 // to each reference line: the median of the runs' ratios (-1: none)
}

// ratioInRun is r's jobs/s over ref's in the same run, or -1.
func ratioInRun(r result, ref subject, results []result) float64 {
	for _, x := range results {
		if x.run == r.run && x.subject == ref.name && x.jobsPerSec > 0 {
			return r.jobsPerSec / x.jobsPerSec
		}
	}
	return -1
}

func ratioCell(v float64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

func report(w io.Writer, o options, args []string, m machine, subjects []subject, results []result) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s, Redis %s (%s). Load average %s before, %s after. %s.\n\n",
		m.cpu, m.cores, m.goVersion, m.redisVersion, hostPort(o.redisURL), m.loadBefore, m.loadAfter, m.date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Command: `go run ./brokerbench %s` (in bench/). %d jobs, %d producers, %d consumers, %d latency samples (at most %s) per measurement, %d runs.\n\n",
		strings.Join(args, " "), o.jobs, o.producers, o.consumers, o.latencySamples, o.latencyTime, o.runs)

	var refs []subject
	for _, s := range subjects {
		if s.asynq {
			refs = append(refs, s)
		}
	}
	ratioHead, ratioRule := "", ""
	for _, r := range refs {
		ratioHead += " × " + r.label + " |"
		ratioRule += "--:|"
	}

	fmt.Fprintln(w, "Every run (× asynq: jobs/s over asynq's in the same run):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| run | broker | jobs/s |"+ratioHead+" pickup p50 | p99 | max | samples | Redis round trips/job | bench CPU | Redis CPU |")
	fmt.Fprintln(w, "|---|---|--:|"+ratioRule+"--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		line := fmt.Sprintf("| %d | %s | %.0f |", r.run, r.subject, r.jobsPerSec)
		for _, ref := range refs {
			line += fmt.Sprintf(" %s |", ratioCell(ratioInRun(r, ref, results)))
		}
		line += fmt.Sprintf(" %s | %s | %s | %d | %s | %s | %s |",
			latencyCell(r, 50), latencyCell(r, 99), latencyCell(r, 100), len(r.latency),
			optional(r.roundTrips, "%.2f"), cpuCell(r.benchCPU, r.jobsPerSec), cpuCell(r.redisCPU, r.jobsPerSec))
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)

	sums := summarize(subjects, refs, results)
	fmt.Fprintf(w, "Medians of %d runs (× asynq: the median of the runs' ratios):\n\n", o.runs)
	fmt.Fprintln(w, "| broker | jobs/s |"+ratioHead+" pickup p50 | p99 | max | Redis round trips/job | bench CPU | Redis CPU |")
	fmt.Fprintln(w, "|---|--:|"+ratioRule+"--:|--:|--:|--:|--:|--:|")
	for _, s := range sums {
		line := fmt.Sprintf("| %s | %.0f |", s.subject.name, s.jobsPerSec)
		for i := range refs {
			line += fmt.Sprintf(" %s |", ratioCell(s.ratios[i]))
		}
		lat := func(d time.Duration) string {
			if o.latencySamples == 0 {
				return "–"
			}
			return fmtDur(d)
		}
		line += fmt.Sprintf(" %s | %s | %s | %s | %s | %s |", lat(s.p50), lat(s.p99), lat(s.max),
			optional(s.roundTrips, "%.2f"), cpuCell(s.benchCPU, s.jobsPerSec), cpuCell(s.redisCPU, s.jobsPerSec))
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "bench CPU and Redis CPU: cores busy during the throughput measurement (CPU seconds per wall-clock second; 1.00 = one core), and in brackets CPU time per job.")
	fmt.Fprintln(w)

	targets(w, o, sums, refs)

	if o.cmdStats {
		fmt.Fprintf(w, "\nRedis commands per job in the throughput measurement of run %d (INFO commandstats; commands run by scripts count too):\n\n", o.runs)
		for _, r := range results {
			if r.run != o.runs || r.cmds == nil {
				continue
			}
			var parts []string
			for _, c := range r.cmds {
				if c.callsPerJob < 0.01 {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s %.2f (%.1f µs)", c.name, c.callsPerJob, c.usecPerJob))
			}
			fmt.Fprintf(w, "- %s: %s\n", r.subject, strings.Join(parts, ", "))
		}
	}
}

// targets says whether the targets are met by the Redis broker reserving one at a time.
func targets(w io.Writer, o options, sums []summary, refs []subject) {
	var nv *summary
	for i, s := range sums {
		if strings.HasPrefix(s.subject.name, "neovratz redis (Reserve n=1)") {
			nv = &sums[i]
		}
	}
	if nv == nil {
		return
	}
	fmt.Fprintf(w, "Targets (neovratz redis, Reserve n=1, medians):\n\n")
	if len(refs) > 0 {
		for i, r := range refs {
			ratio := nv.ratios[i]
			fmt.Fprintf(w, "- jobs/s ≥ %.0f× %s: %.2f× → %s\n", targetRatio, r.name, ratio, verdict(ratio >= targetRatio))
		}
	}
	if o.latencySamples > 0 {
		fmt.Fprintf(w, "- pickup p50 ≤ %s: %s → %s\n", fmtDur(targetP50), fmtDur(nv.p50), verdict(nv.p50 <= targetP50))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func summarize(subjects, refs []subject, results []result) []summary {
	var out []summary
	for _, s := range subjects {
		var rs []result
		for _, r := range results {
			if r.subject == s.name {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		out = append(out, summary{
			subject:    s,
			jobsPerSec: median(rs, func(r result) float64 { return r.jobsPerSec }),
			p50:        time.Duration(median(rs, func(r result) float64 { return float64(r.p(50)) })),
			p99:        time.Duration(median(rs, func(r result) float64 { return float64(r.p(99)) })),
			max:        time.Duration(median(rs, func(r result) float64 { return float64(r.p(100)) })),
			roundTrips: median(rs, func(r result) float64 { return r.roundTrips }),
			redisCPU:   median(rs, func(r result) float64 { return r.redisCPU }),
			benchCPU:   median(rs, func(r result) float64 { return r.benchCPU }),
		})
		for _, ref := range refs {
			sum := &out[len(out)-1]
			sum.ratios = append(sum.ratios, median(rs, func(r result) float64 { return ratioInRun(r, ref, results) }))
		}
	}
	return out
}

// median of f over rs; the mean of the two middle values for an even count.
func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func latencyCell(r result, q float64) string {
	if len(r.latency) == 0 {
		return "–"
	}
	return fmtDur(r.p(q))
}

// cpuCell shows cores busy and, in brackets, CPU time per job; a dash when it does not apply.
func cpuCell(cores, jobsPerSec float64) string {
	if cores < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%.0f µs)", cores, cores/jobsPerSec*1e6)
}

// optional formats v, or a dash for a negative v (a figure that does not apply).
func optional(v float64, format string) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}
