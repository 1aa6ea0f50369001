package brokerhttp_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/brokerhttp"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/httpapi"
	"github.com/neovratz/neovratz/internal/job"
)

// TestThroughTheAPI mounts the handler where the API serves it, behind the API's real key check:
// a worker key runs jobs; a key without the worker scope, a revoked key and a made-up one are
// refused with errors that say so.
func TestThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openBroker(t)
	store, err := auth.OpenSQLite(ctx, filepath.Join(dir, "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys := auth.NewKeys(store, nil)
	api, err := httpapi.New(httpapi.Config{Broker: b, Logger: logger(), Registry: prometheus.NewRegistry(), Keys: keys,
		Limiter: auth.NewMemoryLimiter(nil), Slots: auth.NewMemorySlots(nil), WorkerHandler: brokerhttp.NewHandler(b, logger())})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() { srv.Close(); api.Close() })

	key := func(name string, scopes ...auth.Scope) (auth.Key, string) {
		k, token, err := keys.Create(ctx, auth.Spec{Name: name, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return k, token
	}
	_, workerToken := key("gpu-host", auth.ScopeWorker)
	_, inferenceToken := key("app", auth.ScopeInference)
	revoked, revokedToken := key("old-gpu-host", auth.ScopeWorker)
	if _, err := keys.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}

	c := brokerhttp.NewClient(srv.URL, workerToken, nil)
	runWorker(t, c, "remote-api", sim.New(sim.Config{Tokens: 4}))
	j := enqueue(t, b, "m", `{"messages":[{"role":"user","content":"hello"}]}`)
	waitStatus(t, b, j.ID, job.StatusSucceeded)

	for name, token := range map[string]string{"no worker scope": inferenceToken, "revoked": revokedToken, "unknown": "nvk_nothing_here"} {
		t.Run(name, func(t *testing.T) {
			err := brokerhttp.NewClient(srv.URL, token, nil).RegisterWorker(ctx, broker.WorkerInfo{ID: "intruder", Models: []string{"m"}, StartedAt: time.Now()})
			if !errors.Is(err, brokerhttp.ErrUnauthorized) {
				t.Errorf("register: %v, want ErrUnauthorized", err)
			}
		})
	}
}
