package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
)

// cancelCheckEvery is how often the worker's cancellation watcher asks the broker which of its
// running jobs were canceled: how long past a cancellation an engine may run, at most, once the
// job is older than cancelWatchDelay.
const cancelCheckEvery = 100 * time.Millisecond

// cancelWatcher is the worker's one cancellation watch over all its running jobs: every
// cancelCheckEvery it asks the broker, in one call, which of the jobs that have run for
// cancelWatchDelay were canceled, and ends those. Its cost to the broker is one round trip per
// tick while such jobs run, however many there are, and nothing for jobs that end sooner; a
// watch per job costs a blocking read and a goroutine per job, woken by the job's own deltas.
type cancelWatcher struct {
	b   CancelChecker
	log *slog.Logger

	mu   sync.Mutex
	jobs map[string]watchedJob
}

type watchedJob struct {
	since  time.Time
	cancel context.CancelCauseFunc
}

func newCancelWatcher(b CancelChecker, log *slog.Logger) *cancelWatcher {
	return &cancelWatcher{b: b, log: log, jobs: map[string]watchedJob{}}
}

// add watches job id until the returned function is called; cancel ends the job.
func (c *cancelWatcher) add(id string, cancel context.CancelCauseFunc) (remove func()) {
	c.mu.Lock()
	c.jobs[id] = watchedJob{since: time.Now(), cancel: cancel}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.jobs, id)
		c.mu.Unlock()
	}
}

// run checks the watched jobs until ctx ends.
func (c *cancelWatcher) run(ctx context.Context) {
	t := time.NewTicker(cancelCheckEvery)
	defer t.Stop()
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := c.due(time.Now())
		if len(ids) == 0 {
			continue
		}
		canceled, err := c.b.Canceled(ctx, ids)
		if err != nil {
			if ctx.Err() == nil && time.Since(lastWarn) >= 10*time.Second {
				c.log.Warn("check running jobs for cancellation", "err", err)
				lastWarn = time.Now()
			}
			continue
		}
		c.mu.Lock()
		for _, id := range canceled {
			if j, ok := c.jobs[id]; ok {
				j.cancel(broker.ErrCanceled)
			}
		}
		c.mu.Unlock()
	}
}

// due lists the watched jobs that have run for cancelWatchDelay by now.
func (c *cancelWatcher) due(now time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, j := range c.jobs {
		if now.Sub(j.since) >= cancelWatchDelay {
			ids = append(ids, id)
		}
	}
	return ids
}
