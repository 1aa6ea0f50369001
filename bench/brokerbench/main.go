// Command brokerbench measures neovratz's two brokers against hibiken/asynq on the same Redis:
//
//   - throughput: producers enqueue -jobs no-op jobs while -consumers consumers take them
//     (Reserve, then Complete; asynq: its Server with Concurrency = -consumers and a no-op
//     handler); jobs/s is -jobs over the time from the first enqueue to the last completion;
//   - pickup latency: with every consumer idle and blocked, one job at a time is enqueued and
//     timed from just before Enqueue to the moment a consumer has it (Reserve returned it, or
//     asynq's handler started); the next one follows a short random gap after that.
//
// Every broker is measured in every run, one after the other, so that each run compares them
// on the same machine within seconds (throughput of all of them first, then latency; every
// other run in reverse order); each measurement starts on a clean key space: a unique key prefix
// for the neovratz Redis broker (its keys are deleted afterwards), a fresh temporary file for the
// SQLite broker, and FLUSHDB of a Redis database kept for asynq (-asynq-db, 15 by default: the
// program refuses to flush it when it holds keys that are not asynq's).
//
// Usage (from the bench/ module):
//
//	go run ./brokerbench [flags]
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
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "brokerbench:", err)
		os.Exit(1)
	}
}

// options are the program's flags.
type options struct {
	redisURL       string
	asynqDB        int
	brokers        []string
	batches        []int
	asynqChecks    []time.Duration
	jobs           int
	consumers      int
	producers      int
	warmup         int
	latencySamples int
	latencyTime    time.Duration
	runs           int
	cpuProfile     string
	cmdStats       bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	defURL := os.Getenv("NEOVRATZ_TEST_REDIS_URL")
	if defURL == "" {
		defURL = "redis://127.0.0.1:6390/0"
	}
	var o options
	fs := flag.NewFlagSet("brokerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: brokerbench [flags]

Measures jobs/s end to end (enqueue → reserve → complete, no-op work) and pickup latency
(enqueue → reserve with idle consumers) of neovratz's Redis and SQLite brokers and of
hibiken/asynq on the same Redis, and prints markdown tables.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.redisURL, "redis-url", defURL, "Redis `URL` for the neovratz Redis broker (default from NEOVRATZ_TEST_REDIS_URL); asynq uses the same server")
	fs.IntVar(&o.asynqDB, "asynq-db", 15, "Redis database `number` for asynq; it is FLUSHDB'd before every run")
	brokers := fs.String("brokers", "redis,sqlite,asynq", "comma-separated `list` of brokers to measure: redis, sqlite, asynq")
	batches := fs.String("batch", "1,8", "comma-separated `list` of Reserve sizes for the neovratz consumers, one line each (1 is what a worker slot does)")
	checks := fs.String("asynq-check", "1s,1ms", "comma-separated `list` of asynq TaskCheckInterval values, one line each (1s is asynq's default)")
	fs.IntVar(&o.jobs, "jobs", 20000, "jobs per throughput measurement")
	fs.IntVar(&o.consumers, "consumers", 4, "consumers (asynq: Server Concurrency)")
	fs.IntVar(&o.producers, "producers", 4, "goroutines that enqueue concurrently")
	fs.IntVar(&o.warmup, "warmup", 200, "jobs run through each broker before it is measured (not timed)")
	fs.IntVar(&o.latencySamples, "latency-samples", 1000, "pickup latency samples per measurement (0 skips latency)")
	fs.DurationVar(&o.latencyTime, "latency-time", 20*time.Second, "longest time one latency measurement may take (asynq's default polls about once a second)")
	fs.IntVar(&o.runs, "runs", 3, "runs; each measures every broker once, and the summary takes medians")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole program to `file`")
	fs.BoolVar(&o.cmdStats, "cmdstats", false, "print Redis INFO commandstats per job for every Redis throughput measurement (the server is shared: other clients show up too)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	o.brokers = splitList(*brokers)
	for _, b := range o.brokers {
		if b != "redis" && b != "sqlite" && b != "asynq" {
			return o, fmt.Errorf("-brokers: unknown broker %q", b)
		}
	}
	if o.batches, err = parseInts(*batches); err != nil {
		return o, fmt.Errorf("-batch: %w", err)
	}
	if o.asynqChecks, err = parseDurations(*checks); err != nil {
		return o, fmt.Errorf("-asynq-check: %w", err)
	}
	switch {
	case o.jobs < 1, o.consumers < 1, o.producers < 1, o.runs < 1, o.warmup < 0, o.latencySamples < 0:
		return o, fmt.Errorf("-jobs, -consumers, -producers and -runs must be positive, -warmup and -latency-samples not negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	subjects, err := makeSubjects(o, logger)
	if err != nil {
		return err
	}
	machine := describeMachine(ctx, o.redisURL)
	fmt.Fprintf(stderr, "%s\n", machine.oneLine())

	// Each run first measures every subject's throughput, then every subject's latency, so that
	// the throughput figures compared in a run are taken within seconds of each other; every
	// other run goes through the subjects in reverse, so a drift in the machine's load does
	// not always favour the same ones.
	var results []result
	for r := 1; r <= o.runs; r++ {
		order := slices.Clone(subjects)
		if r%2 == 0 {
			slices.Reverse(order)
		}
		byName := map[string]*result{}
		for _, s := range order {
			byName[s.name] = &result{subject: s.name, run: r}
		}
		phases := []phase{phaseThroughput}
		if o.latencySamples > 0 {
			phases = append(phases, phaseLatency)
		}
		for _, ph := range phases {
			for _, s := range order {
				what := map[phase]string{phaseThroughput: "throughput", phaseLatency: "pickup latency"}[ph]
				fmt.Fprintf(stderr, "run %d/%d: %s, %s …\n", r, o.runs, s.name, what)
				res := byName[s.name]
				if err := measure(ctx, o, s, ph, res); err != nil {
					return fmt.Errorf("run %d, %s, %s: %w", r, s.name, what, err)
				}
				fmt.Fprintf(stderr, "  %s\n", res.oneLine())
			}
		}
		for _, s := range subjects {
			results = append(results, *byName[s.name])
		}
	}
	machine.loadAfter = loadAverage()
	report(stdout, o, args, machine, subjects, results)
	return nil
}

// makeSubjects turns the flags into the list of things to measure, in a fixed order.
func makeSubjects(o options, logger *slog.Logger) ([]subject, error) {
	var subjects []subject
	for _, b := range o.brokers {
		switch b {
		case "redis":
			for _, n := range o.batches {
				subjects = append(subjects, redisSubject(o, n, logger))
			}
		case "sqlite":
			for _, n := range o.batches {
				subjects = append(subjects, sqliteSubject(o, n, logger))
			}
		case "asynq":
			for i, d := range o.asynqChecks {
				subjects = append(subjects, asynqSubject(o, d, i == 0 && d == time.Second))
			}
		}
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("nothing to measure")
	}
	return subjects, nil
}

// machine describes where the figures come from.
type machine struct {
	cpu, goVersion, redisVersion string
	cores                        int
	loadBefore, loadAfter        string
	date                         time.Time
}

func describeMachine(ctx context.Context, redisURL string) machine {
	m := machine{
		cpu:        "unknown",
		cores:      runtime.NumCPU(),
		goVersion:  runtime.Version(),
		loadBefore: loadAverage(),
		date:       time.Now().UTC(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	m.redisVersion = redisVersion(ctx, redisURL)
	return m
}

func (m machine) oneLine() string {
	return fmt.Sprintf("machine: %s, %d cores, %s, Redis %s, load average %s", m.cpu, m.cores, m.goVersion, m.redisVersion, m.loadBefore)
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, item := range splitList(s) {
		n, err := strconv.Atoi(item)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", item)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, item := range splitList(s) {
		d, err := time.ParseDuration(item)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", item)
		}
		out = append(out, d)
	}
	return out, nil
}
