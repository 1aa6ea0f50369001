package httpapi

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// catalog knows which models live workers serve. It reuses the registry's answer for ttl, as
// every inference request asks, and asks again at once about a model it does not know (a worker
// may have just registered), at most every minRefresh.
type catalog struct {
	b   Broker
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	at      time.Time
	workers []broker.WorkerInfo
}

// minRefresh spaces out refreshes caused by unknown models, so a client asking for models that
// do not exist cannot turn every request into a registry scan.
const minRefresh = 100 * time.Millisecond

func newCatalog(b Broker, ttl time.Duration, now func() time.Time) *catalog {
	return &catalog{b: b, ttl: ttl, now: now}
}

func (c *catalog) get(ctx context.Context, maxAge time.Duration) ([]broker.WorkerInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.workers != nil && now.Sub(c.at) < maxAge {
		return c.workers, nil
	}
	ws, err := c.b.Workers(ctx)
	if err != nil {
		return nil, err
	}
	if ws == nil {
		ws = []broker.WorkerInfo{}
	}
	c.workers, c.at = ws, now
	return ws, nil
}

// serving returns the live, non-draining workers that serve model, refreshing the cache when
// none does.
func (c *catalog) serving(ctx context.Context, model string) ([]broker.WorkerInfo, error) {
	ws, err := c.get(ctx, c.ttl)
	if err != nil {
		return nil, err
	}
	if found := servingOf(ws, model); len(found) > 0 {
		return found, nil
	}
	if ws, err = c.get(ctx, minRefresh); err != nil {
		return nil, err
	}
	return servingOf(ws, model), nil
}

func servingOf(ws []broker.WorkerInfo, model string) []broker.WorkerInfo {
	var out []broker.WorkerInfo
	for _, w := range ws {
		if !w.Draining && slices.Contains(w.Models, model) {
			out = append(out, w)
		}
	}
	return out
}

// modelKind returns the kind the registry gives for model ("" when no worker says).
func modelInfo(ws []broker.WorkerInfo, model string) broker.ModelInfo {
	for _, w := range ws {
		for _, mi := range w.ModelInfo {
			if mi.Name == model {
				return mi
			}
		}
	}
	return broker.ModelInfo{Name: model}
}

// servesKind reports whether a model of registry kind mk runs jobs of kind jk; an unknown kind
// is given the benefit of the doubt (the worker refuses what it cannot run).
func servesKind(mk string, jk job.Kind) bool {
	switch mk {
	case "text":
		return jk == job.KindChat || jk == job.KindCompletion
	case "image":
		return jk == job.KindImage
	case "embedding":
		return jk == job.KindEmbedding
	}
	return true
}

// list returns the models of live workers in /v1/models form, sorted by id.
func (c *catalog) list(ctx context.Context) ([]openai.Model, error) {
	ws, err := c.get(ctx, c.ttl)
	if err != nil {
		return nil, err
	}
	byID := map[string]*openai.Model{}
	for _, w := range ws {
		if w.Draining {
			continue
		}
		for _, name := range w.Models {
			m := byID[name]
			if m == nil {
				m = &openai.Model{ID: name, Object: "model", Created: w.StartedAt.Unix(), OwnedBy: "neovratz"}
				byID[name] = m
			}
			if w.StartedAt.Unix() < m.Created {
				m.Created = w.StartedAt.Unix()
			}
			mi := modelInfo([]broker.WorkerInfo{w}, name)
			if m.Kind == "" {
				m.Kind = mi.Kind
			}
			m.ContextLength = max(m.ContextLength, mi.ContextLength)
		}
	}
	out := make([]openai.Model, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b openai.Model) int { return compare(a.ID, b.ID) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
