package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// run decodes a job's input — the OpenAI request of its kind — into an engine request, checks it
// against the model's limits, runs it and returns the engine's result as JSON. A wrong input is a
// bad request: the job fails for good with a message that says what is wrong.
func (w *Worker) run(ctx context.Context, m *model, j job.Job, events *eventWriter) (json.RawMessage, error) {
	if !m.Kind.serves(j.Kind) {
		return nil, badRequest("model", "model %s serves %s, not %s jobs", m.Name, m.Kind, j.Kind)
	}
	if len(j.Input) == 0 {
		return nil, badRequest("input", "is empty")
	}
	switch j.Kind {
	case job.KindChat, job.KindCompletion:
		req, err := decodeText(j)
		if err != nil {
			return nil, err
		}
		if err := m.Limits.checkText(&req); err != nil {
			return nil, err
		}
		return w.runText(ctx, m, req, events)
	case job.KindImage:
		var in openai.ImageRequest
		if err := inference.Decode(j.Input, &in); err != nil {
			return nil, err
		}
		in.Model = j.Model
		req, err := inference.FromImage(&in)
		if err != nil {
			return nil, err
		}
		if err := m.Limits.checkImage(req); err != nil {
			return nil, err
		}
		res, err := m.engine.(ImageEngine).GenerateImage(ctx, req, func(p inference.ImageProgress) error {
			return events.progress(ctx, p)
		})
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case job.KindEmbedding:
		var in openai.EmbeddingRequest
		if err := inference.Decode(j.Input, &in); err != nil {
			return nil, err
		}
		in.Model = j.Model
		req, err := inference.FromEmbedding(&in)
		if err != nil {
			return nil, err
		}
		res, err := m.engine.(EmbeddingEngine).Embed(ctx, req)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	}
	return nil, badRequest("kind", "unknown job kind %q", j.Kind)
}

// decodeText decodes a chat or completion job's input. The job's model wins over the input's:
// the broker routed the job by it.
func decodeText(j job.Job) (inference.TextRequest, error) {
	if j.Kind == job.KindChat {
		var in openai.ChatCompletionRequest
		if err := inference.Decode(j.Input, &in); err != nil {
			return inference.TextRequest{}, err
		}
		in.Model = j.Model
		return inference.FromChat(&in)
	}
	var in openai.CompletionRequest
	if err := inference.Decode(j.Input, &in); err != nil {
		return inference.TextRequest{}, err
	}
	in.Model = j.Model
	return inference.FromCompletion(&in)
}

// runText runs a text request, streaming its deltas.
func (w *Worker) runText(ctx context.Context, m *model, req inference.TextRequest, events *eventWriter) (json.RawMessage, error) {
	start := w.now()
	first := true
	res, err := m.engine.(TextEngine).GenerateText(ctx, req, func(d inference.TextDelta) error {
		if first {
			first = false
			w.metrics.firstToken.WithLabelValues(m.Name).Observe(w.now().Sub(start).Seconds())
		}
		return events.delta(ctx, d)
	})
	if err != nil {
		return nil, err
	}
	w.metrics.tokens.WithLabelValues(m.Name).Add(float64(res.Usage.CompletionTokens))
	return json.Marshal(res)
}

func (l Limits) checkText(r *inference.TextRequest) error {
	if l.MaxContext > 0 && r.MaxTokens > l.MaxContext {
		return badRequest("max_tokens", "must be at most %d, the model's context length", l.MaxContext)
	}
	if l.MaxTokens > 0 {
		if r.MaxTokens > l.MaxTokens {
			return badRequest("max_tokens", "must be at most %d for this model", l.MaxTokens)
		}
		if r.MaxTokens == 0 {
			r.MaxTokens = l.MaxTokens
		}
	}
	return nil
}

func (l Limits) checkImage(r inference.ImageRequest) error {
	if l.MaxImageSide > 0 && (r.Width > l.MaxImageSide || r.Height > l.MaxImageSide) {
		return badRequest("size", "width and height must be at most %d for this model", l.MaxImageSide)
	}
	if l.MaxImageSteps > 0 && r.Steps > l.MaxImageSteps {
		return badRequest("steps", "must be at most %d for this model", l.MaxImageSteps)
	}
	return nil
}

func badRequest(param, format string, args ...any) error {
	return &inference.BadRequestError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

func isBadRequest(err error) bool { return errors.Is(err, inference.ErrBadRequest) }
