// Package brokerhttp carries the worker's side of the broker contract over HTTP, so that a
// worker that cannot reach Redis — on another network, across the internet — pulls jobs from a
// remote API instead, the way AI Horde workers do. NewHandler is the server side, which the API
// mounts under /v1/worker/ behind a check for a key with the worker scope; Client is the worker
// side and satisfies the worker's broker interface.
//
// Routes (JSON bodies; errors in the OpenAI error shape, whose code names the broker error):
//
//	POST /v1/worker/register              WorkerInfo                          → 204
//	POST /v1/worker/heartbeat             {"worker_id"}                       → 204 | 404 not_found
//	POST /v1/worker/deregister            {"worker_id"}                       → 204
//	GET  /v1/worker/workers/{id}          the worker's registry entry         → WorkerInfo | 404
//	POST /v1/worker/reserve               {"worker_id","models","n","wait_ms"} → {"leases":[…]}
//	     long poll: answers as soon as a job is reserved, or with no leases after wait_ms
//	     (at most 30s); the client asks again
//	POST /v1/worker/jobs/{id}/extend      {"lease"}                           → {"until"}
//	POST /v1/worker/jobs/{id}/events      {"lease","events":[…]}              → {"ids":[…]}
//	POST /v1/worker/jobs/{id}/complete    {"lease","result"}                  → 204
//	POST /v1/worker/jobs/{id}/fail        {"lease","error"}                   → 204
//	POST /v1/worker/jobs/{id}/release     {"lease"}                           → 204
//	GET  /v1/worker/jobs/{id}/events?after=&limit=&wait_ms=                   → {"events":[…]}
//	     long poll as reserve; the worker follows its job's log to learn of a cancellation
//
// Broker errors map to statuses: not found 404 (code not_found), lease lost 409 (lease_lost),
// job finished 409 (finished), job canceled 410 (canceled), broker closed 503. The handler does
// no authentication: whoever mounts it must. A worker key is trusted with every job its models
// may run: a lease names its job, attempt and delivery token, and the handler acts on any lease
// it is shown.
package brokerhttp

import (
	"encoding/json"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Prefix is the path under which the handler serves; the API mounts it there.
const Prefix = "/v1/worker/"

// maxWait is the server-side cap of a long poll: below common proxy idle timeouts (60s).
const maxWait = 30 * time.Second

// Lease is a broker.Lease on the wire. Requests carry it without the job's input and result,
// which the server does not need to identify the lease.
type Lease struct {
	Job      job.Job   `json:"job"`
	WorkerID string    `json:"worker_id"`
	Attempt  int       `json:"attempt"`
	Until    time.Time `json:"until"`
	Token    string    `json:"token"`
}

func toWire(l *broker.Lease, withInput bool) Lease {
	w := Lease{Job: l.Job, WorkerID: l.WorkerID, Attempt: l.Attempt, Until: l.Until, Token: l.Token}
	if !withInput {
		w.Job.Input, w.Job.Result = nil, nil
	}
	return w
}

func (w Lease) lease() *broker.Lease {
	return &broker.Lease{Job: w.Job, WorkerID: w.WorkerID, Attempt: w.Attempt, Until: w.Until, Token: w.Token}
}

type workerIDRequest struct {
	WorkerID string `json:"worker_id"`
}

type reserveRequest struct {
	WorkerID string   `json:"worker_id"`
	Models   []string `json:"models"`
	N        int      `json:"n"`
	WaitMS   int64    `json:"wait_ms"`
}

type reserveResponse struct {
	Leases []Lease `json:"leases"`
}

type leaseRequest struct {
	Lease Lease `json:"lease"`
}

type extendResponse struct {
	Until time.Time `json:"until"`
}

type appendRequest struct {
	Lease  Lease          `json:"lease"`
	Events []broker.Event `json:"events"`
}

type appendResponse struct {
	IDs []string `json:"ids"`
}

type completeRequest struct {
	Lease  Lease           `json:"lease"`
	Result json.RawMessage `json:"result"`
}

type failRequest struct {
	Lease Lease     `json:"lease"`
	Error job.Error `json:"error"`
}

type eventsResponse struct {
	Events []broker.Event `json:"events"`
}

// errorResponse is the OpenAI error envelope, with Written for a batch of events that failed
// part-way.
type errorResponse struct {
	Error   errorBody `json:"error"`
	Written *int      `json:"written,omitempty"`
}

type errorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
}

// Error codes that name broker errors.
const (
	codeNotFound  = "not_found"
	codeLeaseLost = "lease_lost"
	codeFinished  = "finished"
	codeCanceled  = "canceled"
	codeClosed    = "unavailable"
	codeBadInput  = "invalid_request"
	codeInternal  = "internal_error"
)
