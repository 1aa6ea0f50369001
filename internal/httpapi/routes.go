package httpapi

import (
	"net/http"

	"github.com/neovratz/neovratz/internal/auth"
)

// handlerFunc is a handler that returns its error instead of writing it (see Error).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint: the mux pattern, the scope a key needs ("" = public), the handler, and
// what the OpenAPI document says of it. The mux and the document are both built from the one
// table, so neither can list a route the other lacks.
type route struct {
	method  string
	pattern string
	scope   auth.Scope
	h       handlerFunc
	raw     http.Handler // a mounted subtree (workers over HTTP), instead of h
	doc     opDoc
}

// workerPrefix is where the workers-over-HTTP handler is mounted.
const workerPrefix = "/v1/worker/"

func (s *Server) routeTable() []route {
	inf, jobs, admin, metrics := auth.ScopeInference, auth.ScopeJobs, auth.ScopeAdmin, auth.ScopeMetrics
	return []route{
		{"GET", "/healthz", "", s.healthz, nil, opDoc{tag: "ops", summary: "Liveness: the process is up.", resp: "text"}},
		{"GET", "/readyz", "", s.readyz, nil, opDoc{tag: "ops", summary: "Readiness: the broker answers.", resp: "text", also: []int{503}}},
		{"GET", "/metrics", metrics, s.metricsHandler(), nil, opDoc{tag: "ops", summary: "Prometheus metrics (metrics scope, which admin implies).", resp: "text"}},
		{"GET", "/version", "", s.version, nil, opDoc{tag: "ops", summary: "The build of this server.", resp: "Version"}},
		{"GET", "/openapi.json", "", s.openapi, nil, opDoc{tag: "ops", summary: "This document.", resp: "object"}},

		{"GET", "/v1/models", inf, s.listModels, nil, opDoc{tag: "openai", summary: "Models that live workers serve.", resp: "ModelList"}},
		{"GET", "/v1/models/{id...}", inf, s.getModel, nil, opDoc{tag: "openai", summary: "One model.", resp: "Model", also: []int{404}}},
		{"POST", "/v1/chat/completions", inf, s.chatCompletions, nil, opDoc{tag: "openai", summary: "Chat completion, streamed (SSE) when stream is true.",
			req: "ChatCompletionRequest", resp: "ChatCompletion", stream: true, also: inferenceErrors}},
		{"POST", "/v1/completions", inf, s.completions, nil, opDoc{tag: "openai", summary: "Text completion, streamed (SSE) when stream is true.",
			req: "CompletionRequest", resp: "Completion", stream: true, also: inferenceErrors}},
		{"POST", "/v1/embeddings", inf, s.embeddings, nil, opDoc{tag: "openai", summary: "Embeddings of the inputs.",
			req: "EmbeddingRequest", resp: "EmbeddingList", also: inferenceErrors}},
		{"POST", "/v1/images/generations", inf, s.imageGenerations, nil, opDoc{tag: "openai", summary: "Generate images (b64_json or url).",
			req: "ImageRequest", resp: "ImagesResponse", also: inferenceErrors}},
		{"GET", "/v1/images/{job}/{file}", "", s.imageFile, nil, opDoc{tag: "openai", summary: "A generated image, at the signed URL an images response gave (no key needed).",
			resp: "png", also: []int{404}}},

		{"POST", "/v1/jobs", jobs, s.createJob, nil, opDoc{tag: "jobs", summary: "Submit an async job (Idempotency-Key header; optional signed webhook).",
			req: "JobRequest", resp: "Job", status: 202, also: []int{400, 403, 404, 413, 429, 503}}},
		{"GET", "/v1/jobs", jobs, s.listJobs, nil, opDoc{tag: "jobs", summary: "The key's own jobs, newest first (status, limit, after).", resp: "JobList"}},
		{"GET", "/v1/jobs/{id}", jobs, s.getJob, nil, opDoc{tag: "jobs", summary: "A job: status, queue position, timings, result.", resp: "Job", also: []int{404}}},
		{"DELETE", "/v1/jobs/{id}", jobs, s.cancelJobHandler, nil, opDoc{tag: "jobs", summary: "Cancel a queued or running job.", resp: "Job", also: []int{404, 409}}},
		{"GET", "/v1/jobs/{id}/events", jobs, s.jobEvents, nil, opDoc{tag: "jobs", summary: "The job's events as SSE, resumable with Last-Event-ID.", resp: "events", also: []int{400, 404}}},

		{"POST", "/v1/admin/keys", admin, s.createKey, nil, opDoc{tag: "admin", summary: "Create a key; its token is shown only in this response.", req: "KeyRequest", resp: "KeyCreated", status: 201}},
		{"GET", "/v1/admin/keys", admin, s.listKeys, nil, opDoc{tag: "admin", summary: "Every key.", resp: "KeyList"}},
		{"GET", "/v1/admin/keys/{id}", admin, s.getKey, nil, opDoc{tag: "admin", summary: "One key.", resp: "Key", also: []int{404}}},
		{"DELETE", "/v1/admin/keys/{id}", admin, s.revokeKey, nil, opDoc{tag: "admin", summary: "Revoke a key, on every replica at once.", resp: "Key", also: []int{404}}},
		{"GET", "/v1/admin/workers", admin, s.listWorkers, nil, opDoc{tag: "admin", summary: "Live workers.", resp: "WorkerList"}},
		{"POST", "/v1/admin/workers/{id}/drain", admin, s.drainWorker, nil, opDoc{tag: "admin", summary: "Ask a worker to drain.", resp: "Worker", also: []int{404}}},
		{"GET", "/v1/admin/queues", admin, s.queues, nil, opDoc{tag: "admin", summary: "Queue statistics per model.", resp: "QueueList"}},
		{"GET", "/v1/admin/dead-letters", admin, s.deadLetters, nil, opDoc{tag: "admin", summary: "Failed jobs in the dead-letter list.", resp: "JobList"}},
		{"POST", "/v1/admin/dead-letters/{id}/requeue", admin, s.requeue, nil, opDoc{tag: "admin", summary: "Queue a dead-lettered job again.", resp: "Job", also: []int{404}}},
		{"GET", "/v1/admin/service-discovery", metrics, s.serviceDiscovery, nil, opDoc{tag: "admin",
			summary: "Workers' metrics addresses for Prometheus http_sd (metrics scope, which admin implies).", resp: "object", also: []int{503}}},
	}
}

// inferenceErrors are the statuses an inference call may answer besides 200 and 401.
var inferenceErrors = []int{400, 403, 404, 413, 429, 503, 504}
