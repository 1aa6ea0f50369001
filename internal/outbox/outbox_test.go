package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/outbox"
	"github.com/neovratz/neovratz/internal/redistest"
)

// stores runs f against every implementation, each fresh.
func stores(t *testing.T, f func(t *testing.T, s outbox.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, outbox.NewMemory()) })
	t.Run("sqlite", func(t *testing.T) {
		s, err := outbox.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "outbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		f(t, outbox.NewRedis(redistest.Client(t), redistest.Prefix(t)))
	})
}

// ids lists items as id=data, sorted: Claim returns them in no particular order.
func ids(items []outbox.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID+"="+string(it.Data))
	}
	slices.Sort(out)
	return out
}

func TestStore(t *testing.T) {
	stores(t, func(t *testing.T, s outbox.Store) {
		ctx := context.Background()
		t0 := time.Unix(1_700_000_000, 0)
		at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.Put(ctx, outbox.Item{ID: "b", Data: []byte("1")}, at(2)))
		must(s.Put(ctx, outbox.Item{ID: "a", Data: []byte("1")}, at(1)))
		must(s.Put(ctx, outbox.Item{ID: "c", Data: []byte("1")}, at(10)))
		must(s.Put(ctx, outbox.Item{ID: "b", Data: []byte("2")}, at(3))) // replaces

		got, err := s.Claim(ctx, at(0), 10, at(100))
		must(err)
		if len(got) != 0 {
			t.Errorf("claim before anything is due = %v", ids(got))
		}
		got, err = s.Claim(ctx, at(5), 1, at(100))
		must(err)
		if fmt.Sprint(ids(got)) != "[a=1]" {
			t.Errorf("claim of 1 at 5s = %v, want [a=1]", ids(got))
		}
		got, err = s.Claim(ctx, at(5), 10, at(100))
		must(err)
		if fmt.Sprint(ids(got)) != "[b=2]" {
			t.Errorf("second claim at 5s = %v, want [b=2] (a is leased)", ids(got))
		}
		// Past a's and b's lease, they are due again, before c.
		got, err = s.Claim(ctx, at(100), 10, at(200))
		must(err)
		if fmt.Sprint(ids(got)) != "[a=1 b=2 c=1]" {
			t.Errorf("claim after the leases = %v, want [a=1 b=2 c=1]", ids(got))
		}

		ok, err := s.Update(ctx, outbox.Item{ID: "a", Data: []byte("3")}, at(150))
		must(err)
		if !ok {
			t.Error("update of a present item reported it absent")
		}
		must(s.Delete(ctx, "b"))
		must(s.Delete(ctx, "nothing"))
		ok, err = s.Update(ctx, outbox.Item{ID: "b", Data: []byte("4")}, at(150))
		must(err)
		if ok {
			t.Error("update brought a deleted item back")
		}
		got, err = s.Claim(ctx, at(160), 10, at(300))
		must(err)
		if fmt.Sprint(ids(got)) != "[a=3]" {
			t.Errorf("claim at 160s = %v, want [a=3]", ids(got))
		}
	})
}

// TestClaimOnce: concurrent claimers never get the same item within a lease.
func TestClaimOnce(t *testing.T) {
	stores(t, func(t *testing.T, s outbox.Store) {
		ctx := context.Background()
		now := time.Now()
		const n = 200
		for i := range n {
			if err := s.Put(ctx, outbox.Item{ID: fmt.Sprint(i), Data: []byte("x")}, now); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.Claim(ctx, now, 7, now.Add(time.Hour))
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						seen[it.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("claimed %d distinct items, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("item %s claimed %d times", id, c)
			}
		}
	})
}
