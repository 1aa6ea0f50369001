package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// errClientGone is returned by a handler whose client disconnected: there is nobody to answer.
var errClientGone = errors.New("client disconnected")

// readBody reads the request body (the MaxBytesReader set by wrapRoute turns an oversized one
// into a 413), then lifts the read deadline: the server's ReadTimeout would otherwise cut off a
// long synchronous call or stream once the body is in.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errBadRequest("body", "could not read the request body")
	}
	liftReadDeadline(w)
	return b, nil
}

func liftReadDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// submission is a job a handler wants enqueued.
type submission struct {
	kind     job.Kind
	model    string
	input    []byte
	priority job.Priority
	// idempotencyKey, maxAttempts and deadline are optional.
	idempotencyKey string
	maxAttempts    int
	deadline       time.Time
	// needLive refuses (503) a model that no live worker serves; without it a model known to
	// the broker may wait in its queue for a worker to come.
	needLive bool
	// slotTTL bounds how long the job holds one of its key's concurrent-job slots if nobody
	// sees it end.
	slotTTL time.Duration
	// onEnqueued, when set, learns the stored job before anything is streamed.
	onEnqueued func(job.Job)
	// beforeEnqueue, when set, runs once the job is admitted and right before it is enqueued;
	// an error stops the submission.
	beforeEnqueue func(ctx context.Context, j job.Job) error
}

// checkModel refuses a model the key may not use (403), one nobody has heard of (404), one no
// live worker serves when that is needed (503), and one whose kind does not match (400).
func (s *Server) checkModel(ctx context.Context, k *auth.Key, sub *submission) error {
	if !k.AllowsModel(sub.model) {
		return errForbidden("model_not_allowed", "This API key may not use the model %q.", sub.model)
	}
	ws, err := s.models.serving(ctx, sub.model)
	if err != nil {
		return errInternal(fmt.Errorf("list workers: %w", err))
	}
	if len(ws) > 0 {
		if mi := modelInfo(ws, sub.model); !servesKind(mi.Kind, sub.kind) {
			return errBadRequest("model", "The model %q is for %s, not for %s requests.", sub.model, kindNoun(mi.Kind), sub.kind)
		}
		return nil
	}
	known, err := s.knownModel(ctx, sub.model)
	if err != nil {
		return errInternal(err)
	}
	if !known {
		return errNotFound("model_not_found", "The model %q does not exist or no worker serves it.", sub.model)
	}
	if sub.needLive {
		return errUnavailable("model_unavailable", fmt.Sprintf("No worker is serving the model %q right now; retry later.", sub.model), 5*time.Second)
	}
	return nil
}

// knownModel reports whether the broker has queues for model: a model that workers served
// before, whose jobs may wait for a worker to come back.
func (s *Server) knownModel(ctx context.Context, model string) (bool, error) {
	stats, err := s.b.QueueStats(ctx)
	if err != nil {
		return false, fmt.Errorf("queue stats: %w", err)
	}
	return slices.ContainsFunc(stats, func(q broker.QueueStats) bool { return q.Model == model }), nil
}

// submit checks a submission against the key's model list and limits and enqueues it. It
// returns the stored job and whether it already existed (an idempotent resubmission). A job it
// returns holds a concurrent-job slot (release it with releaseSlot when the job's end is seen).
func (s *Server) submit(ctx context.Context, w http.ResponseWriter, r *http.Request, sub submission) (job.Job, bool, error) {
	k := keyOf(r)
	info := infoFrom(r.Context())
	info.model = sub.model
	if err := s.checkModel(ctx, k, &sub); err != nil {
		return job.Job{}, false, err
	}
	if err := s.checkTokens(ctx, w, k); err != nil {
		return job.Job{}, false, err
	}
	j := job.Job{
		ID: job.NewID(), Kind: sub.kind, Model: sub.model, Owner: k.ID, Priority: sub.priority,
		MaxAttempts: sub.maxAttempts, IdempotencyKey: sub.idempotencyKey, Input: sub.input, Deadline: sub.deadline,
	}
	if err := s.acquireSlot(ctx, k, j.ID, sub.slotTTL); err != nil {
		return job.Job{}, false, err
	}
	if sub.beforeEnqueue != nil {
		if err := sub.beforeEnqueue(ctx, j); err != nil {
			s.releaseSlot(k, j.ID)
			return job.Job{}, false, err
		}
	}
	stored, existing, err := s.b.Enqueue(ctx, j)
	if err != nil || existing {
		s.releaseSlot(k, j.ID)
	}
	if err != nil {
		if errors.Is(err, broker.ErrQueueFull) {
			s.metrics.rejections.WithLabelValues("queue_full").Inc()
		}
		return job.Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	info.jobID = stored.ID
	if sub.onEnqueued != nil {
		sub.onEnqueued(stored)
	}
	if !existing {
		s.metrics.jobsEnqueued.WithLabelValues(string(stored.Kind), stored.Model).Inc()
	}
	return stored, existing, nil
}

// follow reads job id's event log after event after until the job ends, calling onEvent for
// each event and onIdle when KeepAlive passes without one. It returns the terminal status and
// the id of the last event read. It ends early with ctx's error or the first error of a callback.
func (s *Server) follow(ctx context.Context, id, after string, onEvent func(broker.Event) error, onIdle func() error) (broker.StatusEvent, string, error) {
	for {
		evs, err := s.b.Events(ctx, id, after, 256, s.cfg.KeepAlive)
		if err != nil {
			if ctx.Err() != nil {
				return broker.StatusEvent{}, after, ctx.Err()
			}
			return broker.StatusEvent{}, after, fmt.Errorf("events of %s: %w", id, err)
		}
		if len(evs) == 0 && onIdle != nil {
			if err := onIdle(); err != nil {
				return broker.StatusEvent{}, after, err
			}
		}
		for _, ev := range evs {
			after = ev.ID
			if onEvent != nil {
				if err := onEvent(ev); err != nil {
					return broker.StatusEvent{}, after, err
				}
			}
			if ev.Type == broker.EventStatus {
				st, err := decodeStatus(ev)
				if err != nil {
					return broker.StatusEvent{}, after, err
				}
				if st.Status.Terminal() {
					return st, after, nil
				}
			}
		}
	}
}

// cancelJob cancels a job whose caller gave up (disconnect or timeout), on a context of its own:
// the request's is over.
func (s *Server) cancelJob(id, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.b.Cancel(ctx, id); err != nil && !errors.Is(err, broker.ErrFinished) {
		s.log.Warn("cancel job", "job", id, "why", why, "err", err)
		return
	}
	s.log.Info("job canceled", "job", id, "why", why)
}

func kindNoun(k string) string {
	switch k {
	case "text":
		return "text generation"
	case "image":
		return "image generation"
	case "embedding":
		return "embeddings"
	}
	return k
}
