package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthTimeout bounds each engine's health check in /healthz.
const healthTimeout = 3 * time.Second

// Handler serves the worker's operational endpoints; the command that runs the worker listens:
//
//	GET /metrics  Prometheus metrics from the registry given to New, when it is also a
//	              prometheus.Gatherer (a *prometheus.Registry is); 404 otherwise
//	GET /healthz  200 when every engine that can check its health is healthy and the last
//	              heartbeat is recent, 503 otherwise; the body says which part is not
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	if g, ok := w.reg.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", w.serveHealth)
	return mux
}

// Health is the body of /healthz.
type Health struct {
	OK            bool              `json:"ok"`
	Draining      bool              `json:"draining,omitempty"`
	LastHeartbeat time.Time         `json:"last_heartbeat,omitzero"`
	Engines       map[string]string `json:"engines"` // model → "ok" or the error
}

// CheckHealth checks every engine that can check itself, concurrently, and the broker
// heartbeat.
func (w *Worker) CheckHealth(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	h := Health{OK: true, Engines: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	names := make([]string, 0, len(w.models))
	for name := range w.models {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		hc, ok := w.models[name].engine.(HealthChecker)
		if !ok {
			h.Engines[name] = "ok"
			continue
		}
		wg.Go(func() {
			state := "ok"
			if err := hc.Health(ctx); err != nil {
				state = err.Error()
			}
			mu.Lock()
			h.Engines[name] = state
			if state != "ok" {
				h.OK = false
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	w.mu.Lock()
	h.Draining, h.LastHeartbeat = w.draining, w.lastHeartbeat
	w.mu.Unlock()
	// Three missed heartbeats: the registry has probably dropped the worker.
	if h.LastHeartbeat.IsZero() || w.now().Sub(h.LastHeartbeat) > 3*w.cfg.HeartbeatInterval+time.Second {
		h.OK = false
	}
	return h
}

func (w *Worker) serveHealth(rw http.ResponseWriter, r *http.Request) {
	h := w.CheckHealth(r.Context())
	rw.Header().Set("Content-Type", "application/json")
	if !h.OK {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(rw).Encode(h)
}
