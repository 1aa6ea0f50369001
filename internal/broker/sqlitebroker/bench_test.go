package sqlitebroker_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/job"
)

// Run with:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/broker/sqlitebroker/

func openBench(b *testing.B) *sqlitebroker.Broker {
	b.Helper()
	br, err := sqlitebroker.Open(context.Background(), filepath.Join(b.TempDir(), "broker.db"), broker.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return br
}

var benchInput = json.RawMessage(`{"messages":[{"role":"user","content":"Say hello in five languages."}]}`)

// BenchmarkRoundTrip is one job at a time: enqueue, reserve, complete.
func BenchmarkRoundTrip(b *testing.B) {
	br := openBench(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, _, err := br.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "m1", Input: benchInput}); err != nil {
			b.Fatal(err)
		}
		ls, err := br.Reserve(ctx, "w1", []string{"m1"}, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := br.Complete(ctx, ls[0], json.RawMessage(`{"text":"hello"}`)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkPipeline is the shape of `neovratz serve` under load: producers enqueue while
// workers reserve in batches and complete, each job streaming a few delta events.
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name           string
		deltas         int
		workers, batch int
	}{
		{"no-events", 0, 4, 8},
		{"4-deltas", 0 + 4, 4, 8},
		{"16-single-slot-workers", 0, 16, 1}, // every enqueue wakes all 16
	} {
		b.Run(tc.name, func(b *testing.B) {
			br := openBench(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			const producers = 4
			var enqueued, done atomic.Int64
			total := int64(b.N)
			var wg sync.WaitGroup
			b.ResetTimer()
			for range producers {
				wg.Go(func() {
					for enqueued.Add(1) <= total {
						if _, _, err := br.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "m1", Input: benchInput}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			for w := range tc.workers {
				wg.Go(func() {
					id := "w" + strconv.Itoa(w)
					for done.Load() < total {
						rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
						ls, err := br.Reserve(rctx, id, []string{"m1"}, tc.batch)
						rcancel()
						if err != nil {
							continue // timed out at the end of the run
						}
						for _, l := range ls {
							for range tc.deltas {
								if _, err := br.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`"tok"`)}); err != nil {
									b.Error(err)
									return
								}
							}
							if err := br.Complete(ctx, l, json.RawMessage(`{"text":"hello"}`)); err != nil {
								b.Error(err)
								return
							}
							done.Add(1)
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
