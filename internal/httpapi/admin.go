package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
)

// keyRequest is the body of POST /v1/admin/keys.
type keyRequest struct {
	auth.Spec
	// ExpiresIn is an alternative to expires_at: seconds from now.
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// keyCreated is a new key with its token, shown this once.
type keyCreated struct {
	auth.Key
	Token string `json:"key"`
}

func (s *Server) keys() (*auth.Keys, error) {
	if s.cfg.Keys == nil {
		return nil, errNotFound("keys_disabled", "API keys are disabled on this server (authentication is off).")
	}
	return s.cfg.Keys, nil
}

// createKey serves POST /v1/admin/keys.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.keys()
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req keyRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	if req.ExpiresIn < 0 {
		return errBadRequest("expires_in", "must be positive")
	}
	if req.ExpiresIn > 0 {
		req.ExpiresAt = s.cfg.Now().Add(time.Duration(req.ExpiresIn) * time.Second)
	}
	k, token, err := ks.Create(r.Context(), req.Spec)
	var se *auth.SpecError
	if errors.As(err, &se) {
		return errBadRequest(se.Field, "%s", se.Error())
	}
	if err != nil {
		return errInternal(err)
	}
	s.log.Info("key created", "key", k.ID, "name", k.Name, "by", keyOf(r).ID)
	writeJSON(w, http.StatusCreated, keyCreated{Key: k, Token: token})
	return nil
}

// listKeys serves GET /v1/admin/keys.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.keys()
	if err != nil {
		return err
	}
	keys, err := ks.List(r.Context())
	if err != nil {
		return errInternal(err)
	}
	if keys == nil {
		keys = []auth.Key{}
	}
	writeJSON(w, http.StatusOK, list(keys))
	return nil
}

// getKey serves GET /v1/admin/keys/{id}.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.keys()
	if err != nil {
		return err
	}
	k, err := ks.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, auth.ErrNotFound) {
		return errNotFound("key_not_found", "no such key")
	}
	if err != nil {
		return errInternal(err)
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

// revokeKey serves DELETE /v1/admin/keys/{id}; the key stops working on every replica at once.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.keys()
	if err != nil {
		return err
	}
	k, err := ks.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, auth.ErrNotFound) {
		return errNotFound("key_not_found", "no such key")
	}
	if err != nil {
		return errInternal(err)
	}
	s.log.Info("key revoked", "key", k.ID, "by", keyOf(r).ID)
	writeJSON(w, http.StatusOK, k)
	return nil
}

func list[T any](data []T) any {
	return struct {
		Object string `json:"object"`
		Data   []T    `json:"data"`
	}{"list", data}
}

// listWorkers serves GET /v1/admin/workers.
func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.b.Workers(r.Context())
	if err != nil {
		return errInternal(err)
	}
	if ws == nil {
		ws = []broker.WorkerInfo{}
	}
	writeJSON(w, http.StatusOK, list(ws))
	return nil
}

// drainWorker serves POST /v1/admin/workers/{id}/drain: the worker is marked draining in the
// registry, so the API stops counting it as serving its models and the worker, which reads its
// entry, stops taking jobs and finishes those it runs.
func (s *Server) drainWorker(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ws, err := s.b.Workers(r.Context())
	if err != nil {
		return errInternal(err)
	}
	for _, wk := range ws {
		if wk.ID != id {
			continue
		}
		wk.Draining = true
		if err := s.b.RegisterWorker(r.Context(), wk); err != nil {
			return errInternal(err)
		}
		s.log.Info("worker drain requested", "worker", id, "by", keyOf(r).ID)
		writeJSON(w, http.StatusOK, wk)
		return nil
	}
	return errNotFound("worker_not_found", "no live worker with this id")
}

// queueView is one model's queue in the admin API, with the age in seconds.
type queueView struct {
	Model            string  `json:"model"`
	Depth            int     `json:"depth"`
	Running          int     `json:"running"`
	OldestQueuedSecs float64 `json:"oldest_queued_age_seconds"`
}

// queues serves GET /v1/admin/queues.
func (s *Server) queues(w http.ResponseWriter, r *http.Request) error {
	stats, err := s.b.QueueStats(r.Context())
	if err != nil {
		return errInternal(err)
	}
	out := []queueView{}
	for _, q := range stats {
		out = append(out, queueView{Model: q.Model, Depth: q.Depth, Running: q.Running, OldestQueuedSecs: q.OldestQueuedAge.Seconds()})
	}
	writeJSON(w, http.StatusOK, list(out))
	return nil
}

// deadLetters serves GET /v1/admin/dead-letters.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return errBadRequest("limit", "must be between 1 and 1000")
		}
		limit = n
	}
	jobs, err := s.b.DeadLetters(r.Context(), limit)
	if err != nil {
		return errInternal(err)
	}
	out := []jobView{}
	base := s.baseURL(r)
	for _, j := range jobs {
		out = append(out, s.renderJob(j, base))
	}
	writeJSON(w, http.StatusOK, list(out))
	return nil
}

// requeue serves POST /v1/admin/dead-letters/{id}/requeue.
func (s *Server) requeue(w http.ResponseWriter, r *http.Request) error {
	j, err := s.b.Requeue(r.Context(), r.PathValue("id"))
	if errors.Is(err, broker.ErrNotFound) {
		return errNotFound("job_not_found", "no such job in the dead-letter list")
	}
	if err != nil {
		return errInternal(err)
	}
	s.log.Info("job requeued", "job", j.ID, "by", keyOf(r).ID)
	writeJSON(w, http.StatusOK, s.renderJob(j, s.baseURL(r)))
	return nil
}

// serviceDiscovery serves GET /v1/admin/service-discovery: the live workers' metrics
// addresses in Prometheus's http_sd format, so one Prometheus finds every worker. The answer
// is telemetry.ServiceDiscovery's: only real host:port addresses, worker details as
// __meta_neovratz_* labels that the scrape config picks from.
func (s *Server) serviceDiscovery(w http.ResponseWriter, r *http.Request) error {
	s.sd.ServeHTTP(w, r)
	return nil
}
