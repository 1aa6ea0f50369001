package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
)

// call runs a synchronous call as a job: it enqueues sub and follows the job's events until the
// job ends, past the call's timeout, or until the client goes away — in the last two cases it
// cancels the job. With stream set it streams tc's chunks as server-sent events as the deltas
// come, starting the stream when the job starts running, so that errors before that still get
// their status. It returns the finished job (succeeded; anything else is an error) and the
// stream when one was started.
func (s *Server) call(w http.ResponseWriter, r *http.Request, sub submission, tc *textCall, stream bool) (job.Job, *sseWriter, error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SyncTimeout)
	defer cancel()
	info := infoFrom(r.Context())
	sub.needLive = true
	sub.deadline = s.cfg.Now().Add(s.cfg.SyncTimeout)
	sub.slotTTL = s.cfg.SyncTimeout + time.Minute
	j, _, err := s.submit(ctx, w, r, sub)
	if err != nil {
		return job.Job{}, nil, err
	}
	k := keyOf(r)
	defer s.releaseSlot(k, j.ID)
	w.Header().Set("X-Neovratz-Job-Id", j.ID)

	var sse *sseWriter
	var writeErr error // a failed write: the client is gone
	open := func() error {
		if sse != nil {
			return nil
		}
		sse = startSSE(w, 0)
		for _, c := range tc.startChunks() {
			if err := sse.data(c); err != nil {
				return err
			}
		}
		return nil
	}
	var first, last time.Time
	var final broker.StatusEvent
	final, _, err = s.follow(ctx, j.ID, "", func(ev broker.Event) error {
		switch ev.Type {
		case broker.EventDelta:
			now := s.cfg.Now()
			if first.IsZero() {
				first = now
				s.metrics.ttft.WithLabelValues(j.Model).Observe(now.Sub(info.start).Seconds())
			} else {
				s.metrics.itl.WithLabelValues(j.Model).Observe(now.Sub(last).Seconds())
			}
			last = now
			if !stream {
				return nil
			}
			var d inference.TextDelta
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				return fmt.Errorf("delta event %s: %w", ev.ID, err)
			}
			if writeErr = open(); writeErr != nil {
				return writeErr
			}
			if c := tc.deltaChunk(d); c != nil {
				writeErr = sse.data(c)
			}
			return writeErr
		case broker.EventStatus:
			if stream {
				if st, err := decodeStatus(ev); err == nil && st.Status == job.StatusRunning {
					writeErr = open()
				}
			}
			return writeErr
		}
		return nil
	}, func() error {
		if sse != nil {
			writeErr = sse.comment()
		}
		return writeErr
	})
	if err != nil {
		switch {
		case r.Context().Err() != nil || writeErr != nil:
			s.cancelJob(j.ID, "client disconnected")
			s.metrics.jobsFinished.WithLabelValues(string(j.Kind), j.Model, string(job.StatusCanceled)).Inc()
			return j, sse, errClientGone
		case errors.Is(err, context.DeadlineExceeded):
			s.cancelJob(j.ID, "timed out")
			s.metrics.jobsFinished.WithLabelValues(string(j.Kind), j.Model, string(job.StatusCanceled)).Inc()
			e := errTimeout(fmt.Sprintf("The request did not finish within %s.", s.cfg.SyncTimeout))
			if sse != nil {
				_ = sse.errorEvent(e)
			}
			return j, sse, e
		}
		if sse != nil {
			_ = sse.errorEvent(errInternal(nil))
		}
		return j, sse, err
	}

	// The final event carries a small result; a large one, or a failure, is read from the job.
	fin, ok := final.Finished(j)
	if !ok {
		gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer gcancel()
		if fin, err = s.b.Get(gctx, j.ID); err != nil {
			return j, sse, fmt.Errorf("get finished job: %w", err)
		}
	}
	s.observeFinished(fin)
	if fin.Status != job.StatusSucceeded {
		e := jobFailure(fin)
		if sse != nil {
			_ = sse.errorEvent(e)
		}
		return fin, sse, e
	}
	if stream && sse == nil {
		if err := open(); err != nil {
			return fin, sse, errClientGone
		}
	}
	return fin, sse, nil
}

// observeFinished counts a job whose end the API saw.
func (s *Server) observeFinished(j job.Job) {
	s.metrics.jobsFinished.WithLabelValues(string(j.Kind), j.Model, string(j.Status)).Inc()
	if !j.StartedAt.IsZero() {
		s.metrics.queueWait.WithLabelValues(j.Model).Observe(j.StartedAt.Sub(j.CreatedAt).Seconds())
	}
	if !j.FinishedAt.IsZero() {
		s.metrics.jobDuration.WithLabelValues(string(j.Kind), j.Model).Observe(j.FinishedAt.Sub(j.CreatedAt).Seconds())
	}
}
