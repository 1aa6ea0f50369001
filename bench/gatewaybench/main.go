// Command gatewaybench measures the latency the neovratz gateway adds to an inference call: the
// API (authentication, validation, the job, JSON encoding) plus the broker hop to a worker and
// back, over calling the engine directly.
//
// The engine is the sim engine with a fixed latency (it waits -engine-latency, then streams
// -tokens tokens at once), served two ways:
//
//   - direct: an HTTP server that answers POST /v1/chat/completions by calling the engine and
//     encoding the OpenAI response, as an upstream engine server would;
//   - gateway: the neovratz API (internal/httpapi, with API keys on) over the embedded SQLite
//     broker or Redis, and the real worker (internal/worker) running the same engine in-process:
//     it reserves the job, writes its deltas to the job's event log and completes it.
//
// Arrivals are open-loop: request i is due at start + i/rate whatever happened to the ones
// before, and its latency counts from that due time, so a stalled server cannot hide its queue
// (no coordinated omission). The client, the servers, the worker and Redis share the machine.
//
// Usage (from the bench/ module):
//
//	go run ./gatewaybench -redis-url redis://127.0.0.1:6379/0 [-rates 500,1000] [-duration 10s]
//
// The figures and the machine they come from are in docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/neovratz/neovratz/internal/job"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

type options struct {
	redisURL      string
	modes         []string
	rates         []int
	duration      time.Duration
	warmup        time.Duration
	engineLatency time.Duration
	tokens        int
	slots         int
	cpuProfile    string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	var modes, rates string
	fs := flag.NewFlagSet("gatewaybench", flag.ContinueOnError)
	fs.StringVar(&o.redisURL, "redis-url", os.Getenv("NEOVRATZ_TEST_REDIS_URL"), "Redis for the redis mode (default $NEOVRATZ_TEST_REDIS_URL)")
	fs.StringVar(&modes, "modes", "embedded,redis", "gateway modes to measure: embedded (SQLite broker), redis")
	fs.StringVar(&rates, "rates", "500,1000", "arrival rates, requests per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	fs.DurationVar(&o.engineLatency, "engine-latency", 5*time.Millisecond, "the engine's fixed latency per call")
	fs.IntVar(&o.tokens, "tokens", 8, "tokens per answer")
	fs.IntVar(&o.slots, "slots", 256, "the worker's slots (jobs it runs at once)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.modes = strings.Split(modes, ",")
	for _, r := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			return fmt.Errorf("bad rate %q", r)
		}
		o.rates = append(o.rates, n)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := newEngine(o.engineLatency, o.tokens)

	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	var notes, cpuNotes []string
	fmt.Fprintf(out, "engine latency %s, %d tokens, %s per run after %s warm-up\n\n", o.engineLatency, o.tokens, o.duration, o.warmup)
	fmt.Fprintln(tw, "mode\trate/s\tsent\tok %\tp50\tp90\tp99\tadded p50\tadded p99\tredis cmds/req\t")
	for _, rate := range o.rates {
		direct, err := startDirect(eng)
		if err != nil {
			return err
		}
		base := measure(ctx, direct.url, "", rate, o)
		direct.close()
		row(tw, "direct", rate, base, nil, 0)
		for _, mode := range o.modes {
			gw, err := startGateway(ctx, mode, o, eng, logger)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			var before int64
			var redisBefore time.Duration
			if gw.commands != nil {
				before, redisBefore = gw.commands(), gw.redisCPU()
			}
			cpuBefore := processCPU()
			res := measure(ctx, gw.url, gw.token, rate, o)
			// CPU per request, over warm-up and run: this process (client, API, worker) and Redis.
			total := int(o.warmup.Seconds()*float64(rate)) + res.sent
			cpu := fmt.Sprintf("  %-8s %5d/s: CPU per request: this process (client, API, worker) %s", mode, rate, fmtDur((processCPU()-cpuBefore)/time.Duration(total)))
			if gw.redisCPU != nil {
				cpu += ", Redis " + fmtDur((gw.redisCPU()-redisBefore)/time.Duration(total))
			}
			cpuNotes = append(cpuNotes, cpu+"\n")
			perReq := 0.0
			if gw.commands != nil {
				// Counted over warm-up and run together, and including the test's own INFO.
				perReq = float64(gw.commands()-before) / float64(total)
			}
			notes = append(notes, breakdown(mode, rate, gw.jobs(), res, o.engineLatency))
			gw.close()
			row(tw, mode, rate, res, &base, perReq)
		}
		tw.Flush()
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nwhere a gateway call's time goes (p50 of the jobs' own timestamps):\n%s", strings.Join(notes, ""))
	fmt.Fprintf(out, "\n%s", strings.Join(cpuNotes, ""))
	return nil
}

// breakdown splits a gateway run's median call into the broker's timestamps: enqueue to start
// (pickup), start to finish less the engine (the worker's writes), and the rest (the API before
// the enqueue and after the finish, the HTTP client and server).
func breakdown(mode string, rate int, jobs []job.Job, r result, engine time.Duration) string {
	var pickup, hold []time.Duration
	for _, j := range jobs {
		if j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
			continue
		}
		pickup = append(pickup, j.StartedAt.Sub(j.CreatedAt))
		hold = append(hold, j.FinishedAt.Sub(j.StartedAt)-engine)
	}
	med := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	p, h := med(pickup), med(hold)
	return fmt.Sprintf("  %-8s %5d/s: pickup %s, worker writes %s, API and HTTP %s (of p50 %s less the engine's %s)\n",
		mode, rate, fmtDur(p), fmtDur(h), fmtDur(r.p(50)-engine-p-h), fmtDur(r.p(50)), engine)
}

func row(tw io.Writer, mode string, rate int, r result, base *result, cmds float64) {
	added50, added99, perReq := "", "", ""
	if cmds > 0 {
		perReq = fmt.Sprintf("%.1f", cmds)
	}
	if base != nil {
		added50 = fmtDur(r.p(50) - base.p(50))
		added99 = fmtDur(r.p(99) - base.p(99))
	}
	fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", mode, rate, r.sent, 100*float64(r.ok)/float64(max(r.sent, 1)),
		fmtDur(r.p(50)), fmtDur(r.p(90)), fmtDur(r.p(99)), added50, added99, perReq)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000)
}

// processCPU is the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
