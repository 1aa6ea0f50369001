// Command workerbench measures neovratz end to end with the sim engine standing in for a GPU
// (20 ms to the first token, then 10 ms per token, by default): streamed chat completions through
// the real binary, at rising concurrency until the throughput stops growing. Two deployments:
//
//   - serve: one `neovratz serve` process — API, embedded SQLite broker and a built-in worker;
//   - redis: one `neovratz api` and two `neovratz worker` processes on a Redis.
//
// Each client is closed-loop: it sends its next request when the previous one ends. For each
// concurrency it reports requests/s, the time to first token and the end-to-end latency (p50,
// p99), and what the gateway adds to each: the TTFT minus the engine's 20 ms, the end-to-end
// latency minus the engine's own generation time. API keys are on; the client, the servers,
// the workers and Redis share the machine.
//
// Usage (from the bench/ module; the redis setup needs a Redis of its own: it is flushed):
//
//	go run ./workerbench -redis-url redis://127.0.0.1:6399/0 [-setups serve,redis] [-duration 10s]
//
// Figures, machine and command are in docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "workerbench:", err)
		os.Exit(1)
	}
}

type options struct {
	setups      []string
	redisURL    string
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	ttft, itl   time.Duration
	tokens      int
	slots       int
	interval    time.Duration
	plateau     float64
	bin         string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("workerbench", flag.ContinueOnError)
	var o options
	setups := fs.String("setups", "serve,redis", "deployments to measure: serve, redis")
	conc := fs.String("concurrency", "1,4,16,32,64,128,256,512", "client concurrency levels, rising")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis for the redis setup (FLUSHDB is run on it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per level")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each level")
	fs.DurationVar(&o.ttft, "ttft", 20*time.Millisecond, "sim engine: time to first token")
	fs.DurationVar(&o.itl, "itl", 10*time.Millisecond, "sim engine: time per further token")
	fs.IntVar(&o.tokens, "tokens", 16, "tokens per answer")
	fs.DurationVar(&o.interval, "stream-interval", 0, "the model's stream-interval: least time between a job's event writes after the first")
	fs.IntVar(&o.slots, "slots", 1024, "sim engine slots per worker (high: the machine, not slots, should saturate)")
	fs.Float64Var(&o.plateau, "plateau", 0.05, "stop once a level adds less than this share of throughput (after two such levels)")
	fs.StringVar(&o.bin, "bin", "", "neovratz binary (default: build ../cmd/neovratz)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.setups = strings.Split(*setups, ",")
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -concurrency %q", s)
		}
		o.concurrency = append(o.concurrency, n)
	}
	tmp, err := os.MkdirTemp("", "workerbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "neovratz")
		fmt.Fprintln(os.Stderr, "building neovratz…")
		// Built in the main module (bench/ replaces it with ../), with its own go.sum.
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/neovratz/neovratz").Output()
		if err != nil {
			return fmt.Errorf("find the neovratz module: %w", err)
		}
		cmd := exec.Command("go", "build", "-o", o.bin, "./cmd/neovratz")
		cmd.Dir = strings.TrimSpace(string(root))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build neovratz: %w", err)
		}
	}
	engineTotal := o.ttft + time.Duration(o.tokens-1)*o.itl
	fmt.Printf("sim engine: %v to first token, %v per token, %d tokens (%v per answer); stream-interval %v\n\n", o.ttft, o.itl, o.tokens, engineTotal, o.interval)
	for _, setup := range o.setups {
		d, err := deploy(ctx, setup, o, tmp)
		if err != nil {
			return fmt.Errorf("%s: %w", setup, err)
		}
		fmt.Printf("## %s\n\nload average before: %s\n\n", d.name, loadavg())
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "clients\treq/s\terrors\tTTFT p50\tTTFT p99\tadded p50\tadded p99\te2e p50\te2e p99\te2e added p50\te2e added p99\tcores busy\t")
		var cpuRows []string
		best, flat := 0.0, 0
		for _, c := range o.concurrency {
			var samples []cpuSample
			var mu sync.Mutex
			r := measure(ctx, d.url, d.token, c, o, func() {
				s := sampleCPU(d, d.redisPID)
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			})
			time.Sleep(50 * time.Millisecond) // the closing sample's timer
			mu.Lock()
			cpu, cores := "", 0.0
			if len(samples) == 2 {
				cpu, cores = perRequest(samples[0], samples[1], r.ok, o.duration)
			}
			mu.Unlock()
			cpuRows = append(cpuRows, fmt.Sprintf("%d clients: %s", c, cpu))
			fmt.Fprintf(tw, "%d\t%.0f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", c, r.rps(o.duration), r.errors,
				ms(r.ttft.p(50)), ms(r.ttft.p(99)), ms(r.ttft.p(50)-o.ttft), ms(r.ttft.p(99)-o.ttft),
				ms(r.e2e.p(50)), ms(r.e2e.p(99)), ms(r.e2e.p(50)-engineTotal), ms(r.e2e.p(99)-engineTotal), cores)
			fmt.Fprintf(os.Stderr, "%s: %d clients: %.0f req/s\n", setup, c, r.rps(o.duration))
			rps := r.rps(o.duration)
			if rps < best*(1+o.plateau) {
				if flat++; flat == 2 {
					break // saturated: two levels in a row added (almost) nothing
				}
			} else {
				flat = 0
			}
			best = max(best, rps)
		}
		tw.Flush()
		fmt.Printf("\nCPU per request (ms), by process:\n\n")
		for _, row := range cpuRows {
			fmt.Printf("    %s\n", row)
		}
		fmt.Printf("\nprocesses: %s; load average after: %s\n\n", d.describe(), loadavg())
		d.stop()
	}
	return nil
}

// loadavg is /proc/loadavg's first three numbers: other work on the machine skews the figures.
func loadavg() string {
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

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
