package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// payload is every job's input: small, like a short chat request.
var payload = []byte(`{"messages":[{"role":"user","content":"hi"}]}`)

// A subject is one broker set up one way (a line of the report).
type subject struct {
	name  string
	asynq bool   // a reference line: ratios are taken against these
	label string // a short name for a reference line's ratio column
	// redis says whether the subject talks to Redis, so Redis CPU and commands are measured.
	redis bool
	// open starts a fresh broker on a clean key space, with its consumers running and
	// reporting to p.
	open func(ctx context.Context, p *probe) (instance, error)
}

// An instance is one subject's broker, running, for one run.
type instance interface {
	enqueue(ctx context.Context) error
	// roundTrips is the number of Redis round trips the instance's clients have made so far
	// (-1 when it does not use Redis).
	roundTrips() int64
	// close stops the consumers, closes the broker and removes what the run left behind.
	close() error
}

// probe is what consumers report to: a pickup (a consumer has a job) and a completion.
type probe struct {
	timing    atomic.Bool // report pickups on pickups (latency phase)
	pickups   chan time.Time
	completed atomic.Int64
	want      atomic.Int64   // the completion count that ends the current phase
	finished  chan time.Time // gets the time of completion number want
	errs      chan error     // first consumer error
	errOnce   sync.Once
}

func newProbe() *probe {
	return &probe{
		pickups:  make(chan time.Time, 16),
		finished: make(chan time.Time, 1),
		errs:     make(chan error, 1),
	}
}

// picked is called by a consumer the moment it has a job.
func (p *probe) picked(t time.Time) {
	if p.timing.Load() {
		select {
		case p.pickups <- t:
		default:
		}
	}
}

// done is called by a consumer when a job is complete.
func (p *probe) done() {
	if p.completed.Add(1) == p.want.Load() {
		p.finished <- time.Now()
	}
}

// fail records a consumer's error; phases stop on it.
func (p *probe) fail(err error) {
	p.errOnce.Do(func() { p.errs <- err })
}

// result is one subject's figures in one run.
type result struct {
	subject    string
	run        int
	jobsPerSec float64
	elapsed    time.Duration
	roundTrips float64 // Redis round trips per job in the throughput phase (-1: no Redis)
	benchCPU   float64 // CPU seconds of this process per wall second in the throughput phase
	redisCPU   float64 // same, of the Redis server (-1: no Redis)
	cmds       []cmdStat
	latency    []time.Duration // sorted
}

func (r result) oneLine() string {
	s := fmt.Sprintf("%.0f jobs/s (%d ms)", r.jobsPerSec, r.elapsed.Milliseconds())
	if len(r.latency) > 0 {
		s += fmt.Sprintf(", pickup p50 %s p99 %s max %s (n=%d)", fmtDur(r.p(50)), fmtDur(r.p(99)), fmtDur(r.latency[len(r.latency)-1]), len(r.latency))
	}
	return s
}

// p returns the q-th percentile (nearest rank) of the latency samples.
func (r result) p(q float64) time.Duration {
	if len(r.latency) == 0 {
		return 0
	}
	i := int(float64(len(r.latency))*q/100+0.999999) - 1
	return r.latency[max(0, min(i, len(r.latency)-1))]
}

// phase is what one measurement of a subject does.
type phase int

const (
	phaseThroughput phase = iota
	phaseLatency
)

// measure opens a fresh broker for s, warms it up, and measures one phase into res.
func measure(ctx context.Context, o options, s subject, ph phase, res *result) (err error) {
	p := newProbe()
	inst, err := s.open(ctx, p)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := inst.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()

	if o.warmup > 0 {
		if _, err := throughput(ctx, inst, p, o.warmup, o.producers); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	if ph == phaseLatency {
		res.latency, err = latency(ctx, inst, p, o.latencySamples, o.latencyTime)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		return nil
	}

	rt0 := inst.roundTrips()
	cpu0 := processCPU()
	var redis0 redisSnapshot
	if s.redis {
		redis0 = snapshotRedis(ctx, o.redisURL)
	}
	res.elapsed, err = throughput(ctx, inst, p, o.jobs, o.producers)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	wall := res.elapsed.Seconds()
	res.jobsPerSec = float64(o.jobs) / wall
	res.benchCPU = (processCPU() - cpu0).Seconds() / wall
	res.roundTrips, res.redisCPU = -1, -1
	if s.redis {
		redis1 := snapshotRedis(ctx, o.redisURL)
		res.roundTrips = float64(inst.roundTrips()-rt0) / float64(o.jobs)
		res.redisCPU = (redis1.cpu - redis0.cpu) / wall
		res.cmds = diffCmdStats(redis0.cmds, redis1.cmds, o.jobs)
	}
	return nil
}

// phaseTimeout bounds one phase, so that a stuck broker ends the program with an error.
const phaseTimeout = 5 * time.Minute

// throughput enqueues jobs from producers goroutines and returns the time from the first
// enqueue to the last completion.
func throughput(ctx context.Context, inst instance, p *probe, jobs, producers int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	p.want.Store(p.completed.Load() + int64(jobs))

	enqErr := make(chan error, producers)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range producers {
		share := jobs / producers
		if i < jobs%producers {
			share++
		}
		wg.Go(func() {
			for range share {
				if err := inst.enqueue(ctx); err != nil {
					enqErr <- fmt.Errorf("enqueue: %w", err)
					cancel()
					return
				}
			}
		})
	}
	defer wg.Wait()
	select {
	case end := <-p.finished:
		return end.Sub(start), nil
	case err := <-enqErr:
		return 0, err
	case err := <-p.errs:
		return 0, fmt.Errorf("consumer: %w", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("%d of %d jobs done: %w", p.completed.Load()-p.want.Load()+int64(jobs), jobs, ctx.Err())
	}
}

// latency enqueues one job at a time while the consumers are idle and times its pickup.
func latency(ctx context.Context, inst instance, p *probe, samples int, limit time.Duration) ([]time.Duration, error) {
	p.timing.Store(true)
	defer p.timing.Store(false)
	// Nothing else runs now; a stale pickup would be a bug in the program.
	if len(p.pickups) > 0 {
		return nil, errors.New("pickup reported before the latency phase")
	}
	var lat []time.Duration
	stop := time.Now().Add(limit)
	for len(lat) < samples && time.Now().Before(stop) {
		t0 := time.Now()
		if err := inst.enqueue(ctx); err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
		select {
		case t := <-p.pickups:
			lat = append(lat, t.Sub(t0))
		case err := <-p.errs:
			return nil, fmt.Errorf("consumer: %w", err)
		case <-time.After(30 * time.Second):
			return nil, errors.New("no pickup within 30s")
		}
		// A short random gap: the consumer completes the job and blocks again, and enqueues
		// do not fall in step with any polling period.
		time.Sleep(time.Millisecond + rand.N(2*time.Millisecond))
	}
	slices.Sort(lat)
	return lat, nil
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}
