package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// jobRequest is the body of POST /v1/jobs. Input is the body the matching OpenAI endpoint takes.
type jobRequest struct {
	Kind        job.Kind        `json:"kind"`
	Model       string          `json:"model"`
	Input       json.RawMessage `json:"input"`
	Priority    job.Priority    `json:"priority"`
	MaxAttempts int             `json:"max_attempts"`
	Webhook     *webhookSpec    `json:"webhook"`
}

// webhookSpec asks for a POST to URL when the job ends, signed with Secret.
type webhookSpec struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// jobView is a job as the jobs API shows it, with its result in the shape of the matching
// OpenAI response.
type jobView struct {
	ID             string       `json:"id"`
	Object         string       `json:"object"` // "job"
	Kind           job.Kind     `json:"kind"`
	Model          string       `json:"model"`
	Status         job.Status   `json:"status"`
	Priority       job.Priority `json:"priority"`
	Attempts       int          `json:"attempts"`
	MaxAttempts    int          `json:"max_attempts"`
	QueuePosition  int          `json:"queue_position,omitempty"`
	IdempotencyKey string       `json:"idempotency_key,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	StartedAt      time.Time    `json:"started_at,omitzero"`
	FinishedAt     time.Time    `json:"finished_at,omitzero"`
	Deadline       time.Time    `json:"deadline,omitzero"`
	Result         any          `json:"result,omitempty"`
	Error          *job.Error   `json:"error,omitempty"`
}

// renderJob returns the view of j; base is where image URLs point ("" renders images inline).
func (s *Server) renderJob(j job.Job, base string) jobView {
	v := jobView{ID: j.ID, Object: "job", Kind: j.Kind, Model: j.Model, Status: j.Status, Priority: j.Priority,
		Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, IdempotencyKey: j.IdempotencyKey, CreatedAt: j.CreatedAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Deadline: j.Deadline, Error: j.Error}
	if j.Status == job.StatusSucceeded && len(j.Result) > 0 {
		res, err := s.renderResult(j, base)
		var ce *Error
		if errors.As(err, &ce) && ce.Status == http.StatusBadRequest {
			// The input asked for what the result cannot give (embedding dimensions above the
			// model's size, known only once it answered): say so in place of the result.
			v.Error = &job.Error{Code: "invalid_request", Message: ce.Param + ": " + ce.Message}
		} else if err != nil {
			s.log.Error("render job result", "job", j.ID, "err", err)
		} else {
			v.Result = res
		}
	}
	return v
}

// renderResult turns a job's stored result into the OpenAI response its input asked for.
func (s *Server) renderResult(j job.Job, base string) (any, error) {
	switch j.Kind {
	case job.KindChat, job.KindCompletion:
		var res inference.TextResult
		if err := json.Unmarshal(j.Result, &res); err != nil {
			return nil, err
		}
		tc := newTextCall(j.Kind == job.KindChat, j, max(1, len(res.Choices)))
		if j.Kind == job.KindChat {
			var req openai.ChatCompletionRequest
			_ = json.Unmarshal(j.Input, &req)
			tc.logprobs = req.Logprobs
		} else {
			var req openai.CompletionRequest
			_ = json.Unmarshal(j.Input, &req)
			tc.logprobs = req.Logprobs != nil
			if req.Echo && len(req.Prompt) == 1 {
				tc.echo = req.Prompt[0]
			}
		}
		return tc.response(res), nil
	case job.KindEmbedding:
		var res inference.EmbeddingResult
		if err := json.Unmarshal(j.Result, &res); err != nil {
			return nil, err
		}
		var req openai.EmbeddingRequest
		_ = json.Unmarshal(j.Input, &req)
		if req.Dimensions != nil {
			if err := shortenEmbeddings(&res, *req.Dimensions, j.Model, "input.dimensions"); err != nil {
				return nil, err
			}
		}
		return embeddingResponse(j.Model, req.EncodingFormat, res), nil
	case job.KindImage:
		var res inference.ImageResult
		if err := json.Unmarshal(j.Result, &res); err != nil {
			return nil, err
		}
		var req openai.ImageRequest
		_ = json.Unmarshal(j.Input, &req)
		var urlFor func(int) string
		if req.ResponseFormat == "url" && base != "" {
			exp := s.cfg.Now().Add(imageURLLifetime).Unix()
			urlFor = func(i int) string { return base + s.imagePath(j.ID, i, exp) }
		}
		return imagesResponse(j.CreatedAt.Unix(), res, urlFor), nil
	}
	return json.RawMessage(j.Result), nil
}

// validateInput checks a job's input as the matching OpenAI endpoint would, and returns it with
// its model field set to model (when the input has none) and the model it names.
func validateInput(kind job.Kind, model string, input json.RawMessage) (json.RawMessage, string, error) {
	if len(input) == 0 {
		return nil, "", errBadRequest("input", "is required: the body of the OpenAI request the job runs")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(input, &fields); err != nil || fields == nil {
		return nil, "", errBadRequest("input", "must be a JSON object")
	}
	var inModel string
	if raw, ok := fields["model"]; ok {
		if err := json.Unmarshal(raw, &inModel); err != nil {
			return nil, "", errBadRequest("input.model", "must be a string")
		}
	}
	switch {
	case model != "" && inModel != "" && model != inModel:
		return nil, "", errBadRequest("model", "names %q but input.model names %q", model, inModel)
	case model == "" && inModel == "":
		return nil, "", errBadRequest("model", "is required (in the job or its input)")
	case inModel == "":
		fields["model"], _ = json.Marshal(model)
		input, _ = json.Marshal(fields)
	default:
		model = inModel
	}
	var err error
	switch kind {
	case job.KindChat:
		var req openai.ChatCompletionRequest
		if err = inference.Decode(input, &req); err == nil {
			_, err = inference.FromChat(&req)
		}
	case job.KindCompletion:
		var req openai.CompletionRequest
		if err = inference.Decode(input, &req); err == nil {
			_, err = inference.FromCompletion(&req)
		}
	case job.KindEmbedding:
		var req openai.EmbeddingRequest
		if err = inference.Decode(input, &req); err == nil {
			_, err = inference.FromEmbedding(&req)
		}
		if err == nil {
			err = checkDimensions(req.Dimensions, "input.dimensions")
		}
	case job.KindImage:
		var req openai.ImageRequest
		if err = inference.Decode(input, &req); err == nil {
			_, err = inference.FromImage(&req)
		}
	default:
		return nil, "", errBadRequest("kind", "must be one of chat, completion, embedding, image")
	}
	var bre *inference.BadRequestError
	if errors.As(err, &bre) {
		return nil, "", errBadRequest("input."+bre.Param, "%s", bre.Error())
	}
	return input, model, err
}

// createJob serves POST /v1/jobs.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req jobRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	if !req.Kind.Valid() {
		return errBadRequest("kind", "must be one of chat, completion, embedding, image")
	}
	if req.Priority == "" {
		req.Priority = job.PriorityNormal
	}
	if !req.Priority.Valid() {
		return errBadRequest("priority", "must be one of high, normal, low")
	}
	if req.MaxAttempts < 0 || req.MaxAttempts > job.MaxAttemptsLimit {
		return errBadRequest("max_attempts", "must be between 1 and %d", job.MaxAttemptsLimit)
	}
	input, model, err := validateInput(req.Kind, req.Model, req.Input)
	if err != nil {
		return err
	}
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > job.MaxIdempotencyKeyLen {
		return errBadRequest("Idempotency-Key", "must be at most %d bytes", job.MaxIdempotencyKeyLen)
	}
	k := keyOf(r)
	var end *jobEnd // what the API owes the job when it ends
	if req.Webhook != nil {
		if err := req.Webhook.validate(r.Context(), s); err != nil {
			return err
		}
		end = &jobEnd{URL: req.Webhook.URL, Secret: req.Webhook.Secret, Delivery: hex.EncodeToString(randomBytes(8))}
	}
	if k.Limits.TokensPerMinute > 0 {
		if end == nil {
			end = &jobEnd{}
		}
		end.TPM = k.Limits.TokensPerMinute
	}
	sub := submission{kind: req.Kind, model: model, input: input, priority: req.Priority,
		idempotencyKey: idem, maxAttempts: req.MaxAttempts, deadline: s.cfg.Now().Add(s.cfg.AsyncDeadline),
		slotTTL: s.cfg.AsyncDeadline + time.Hour}
	pending := "" // the job id the outbox holds an entry for
	if end != nil {
		end.Owner, end.Slot = k.ID, k.Limits.ConcurrentJobs > 0
		// The entry is written before the enqueue, so that no replica stop can leave an
		// enqueued job without it.
		sub.beforeEnqueue = func(ctx context.Context, j job.Job) error {
			if err := s.hooks.put(ctx, j.ID, *end); err != nil {
				return errInternal(fmt.Errorf("record end-of-job work: %w", err))
			}
			pending = j.ID
			return nil
		}
	}
	j, existing, err := s.submit(r.Context(), w, r, sub)
	if pending != "" {
		if err != nil || existing || j.ID != pending {
			// Nothing new to watch: the first submission's entry, if any, stands.
			s.hooks.drop(pending)
		} else {
			s.hooks.ready(pending, *end)
		}
	}
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if existing {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, s.renderJob(j, s.baseURL(r)))
	return nil
}

// validate checks the webhook: a URL this server may call (webhookaddr.go) and a secret.
func (h *webhookSpec) validate(ctx context.Context, s *Server) error {
	if len(h.URL) > 2048 {
		return errBadRequest("webhook.url", "must be at most 2048 bytes")
	}
	if err := s.hooks.policy.validateURL(ctx, h.URL, s.cfg.Webhooks.LookupNetIP); err != nil {
		return err
	}
	if len(h.Secret) < 16 || len(h.Secret) > 256 {
		return errBadRequest("webhook.secret", "must be 16-256 bytes; it signs every delivery")
	}
	return nil
}

// ownJob returns the job with the path's id when the key may see it (its owner, or an admin);
// anyone else gets the same 404 as for a job that does not exist.
func (s *Server) ownJob(r *http.Request) (job.Job, error) {
	j, err := s.b.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return job.Job{}, err
	}
	k := keyOf(r)
	if j.Owner != k.ID && !k.HasScope(auth.ScopeAdmin) {
		return job.Job{}, errNotFound("job_not_found", "no such job")
	}
	infoFrom(r.Context()).jobID = j.ID
	return j, nil
}

// seenEnd does what the API owes a job whose end it saw: its key's concurrent-job slot is free.
// The requester's key is used when it owns the job; an admin looking at another key's job costs
// a lookup of that key.
func (s *Server) seenEnd(r *http.Request, j job.Job) {
	if !j.Status.Terminal() || s.cfg.Keys == nil {
		return
	}
	if k := keyOf(r); k.ID == j.Owner {
		s.releaseSlot(k, j.ID)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if k, err := s.cfg.Keys.Get(ctx, j.Owner); err == nil {
		s.releaseSlot(&k, j.ID)
	}
}

// getJob serves GET /v1/jobs/{id}.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.ownJob(r)
	if err != nil {
		return err
	}
	v := s.renderJob(j, s.baseURL(r))
	if j.Status == job.StatusQueued {
		v.QueuePosition = s.queuePosition(r.Context(), j)
	} else {
		s.seenEnd(r, j)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// queuePosition counts the queued jobs of j's model that a worker will take before j (1 = next),
// or 0 when the queue is too long to count.
func (s *Server) queuePosition(ctx context.Context, j job.Job) int {
	ahead, cursor := 0, ""
	for page := 0; page < 5; page++ {
		jobs, next, err := s.b.List(ctx, broker.ListFilter{Status: job.StatusQueued, Limit: 1000, Cursor: cursor})
		if err != nil {
			return 0
		}
		for _, o := range jobs {
			if o.Model != j.Model || o.ID == j.ID {
				continue
			}
			if o.Priority.Rank() < j.Priority.Rank() || o.Priority == j.Priority && o.CreatedAt.Before(j.CreatedAt) {
				ahead++
			}
		}
		if next == "" {
			return ahead + 1
		}
		cursor = next
	}
	return 0
}

// listJobs serves GET /v1/jobs: the key's own jobs, newest first, filtered by status and paged.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := broker.ListFilter{Owner: keyOf(r).ID, Status: job.Status(q.Get("status")), Cursor: q.Get("after")}
	if f.Status != "" && !f.Status.Valid() {
		return errBadRequest("status", "must be one of queued, running, succeeded, failed, canceled, expired")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return errBadRequest("limit", "must be between 1 and 1000")
		}
		f.Limit = n
	}
	jobs, next, err := s.b.List(r.Context(), f)
	if err != nil {
		if f.Cursor != "" {
			return errBadRequest("after", "is not a cursor this API returned")
		}
		return errInternal(fmt.Errorf("list jobs: %w", err))
	}
	out := struct {
		Object  string    `json:"object"`
		Data    []jobView `json:"data"`
		HasMore bool      `json:"has_more"`
		Next    string    `json:"next_cursor,omitempty"`
	}{Object: "list", Data: []jobView{}, HasMore: next != "", Next: next}
	base := s.baseURL(r)
	for _, j := range jobs {
		out.Data = append(out.Data, s.renderJob(j, base))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelJobHandler serves DELETE /v1/jobs/{id}.
func (s *Server) cancelJobHandler(w http.ResponseWriter, r *http.Request) error {
	j, err := s.ownJob(r)
	if err != nil {
		return err
	}
	c, err := s.b.Cancel(r.Context(), j.ID)
	if errors.Is(err, broker.ErrFinished) {
		return errConflict("job_finished", fmt.Sprintf("The job already ended (%s).", c.Status))
	}
	if err != nil {
		return err
	}
	s.seenEnd(r, c)
	writeJSON(w, http.StatusOK, s.renderJob(c, s.baseURL(r)))
	return nil
}

// jobEvents serves GET /v1/jobs/{id}/events: the job's event log as server-sent events, from
// the start or after the event named by Last-Event-ID (or ?after=), until the job ends; then one
// "job" event with the finished job.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) error {
	j, err := s.ownJob(r)
	if err != nil {
		return err
	}
	after := r.Header.Get("Last-Event-ID")
	if a := r.URL.Query().Get("after"); a != "" {
		after = a
	}
	liftReadDeadline(w)
	// The first read happens before the stream starts, so that a bad Last-Event-ID still gets
	// a status.
	first, err := s.b.Events(r.Context(), j.ID, after, 256, 0)
	if err != nil {
		if errors.Is(err, broker.ErrNotFound) {
			return err
		}
		if after != "" {
			return errBadRequest("Last-Event-ID", "is not an event id of this job")
		}
		return errInternal(err)
	}
	sse := startSSE(w, 2*s.cfg.KeepAlive+30*time.Second)
	last := after
	ended := false
	write := func(ev broker.Event) error {
		last = ev.ID
		if ev.Type == broker.EventStatus {
			if st, err := decodeStatus(ev); err == nil && st.Status.Terminal() {
				ended = true
			}
		}
		return sse.event(ev.ID, ev.Type, ev.Data)
	}
	for _, ev := range first {
		if err := write(ev); err != nil {
			return errClientGone
		}
	}
	if !ended {
		// A client resuming after the final status event has nothing more to wait for.
		if cur, err := s.b.Get(r.Context(), j.ID); err == nil && cur.Status.Terminal() {
			rest, err := s.b.Events(r.Context(), j.ID, last, 1000, 0)
			if err == nil && len(rest) == 0 {
				ended = true
			}
		}
	}
	if !ended {
		_, _, err = s.follow(r.Context(), j.ID, last, write, sse.comment)
		if err != nil {
			if r.Context().Err() != nil {
				return errClientGone
			}
			_ = sse.errorEvent(asError(err))
			return err
		}
	}
	fin, err := s.b.Get(r.Context(), j.ID)
	if err != nil {
		return err
	}
	s.seenEnd(r, fin)
	b, err := json.Marshal(s.renderJob(fin, s.baseURL(r)))
	if err != nil {
		return err
	}
	if err := sse.event(last, "job", b); err != nil {
		return errClientGone
	}
	return nil
}
