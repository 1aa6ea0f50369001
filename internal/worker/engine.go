package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/neovratz/neovratz/internal/inference"
)

// Engine is what serves one model: a TextEngine, an ImageEngine or an EmbeddingEngine, as the
// model's kind asks, and optionally a HealthChecker and an io.Closer. It is an empty interface
// so that one engine value can serve several kinds (an OpenAI upstream generates text and
// embeds); New checks that every model's engine has the method its kind needs.
type Engine any

// TextEngine generates text for chat and completion jobs.
type TextEngine interface {
	// GenerateText runs req and calls emit with each piece of new text, in order, as soon as it
	// exists. When emit returns an error the engine must stop and return it. The result holds
	// every choice's whole text, finish reason and the token usage. Cancelling ctx must abort the
	// generation promptly.
	GenerateText(ctx context.Context, req inference.TextRequest, emit func(inference.TextDelta) error) (inference.TextResult, error)
}

// ImageEngine generates images.
type ImageEngine interface {
	// GenerateImage runs req, calling progress as steps finish (when the engine knows them). As
	// with emit, an error from progress stops the engine.
	GenerateImage(ctx context.Context, req inference.ImageRequest, progress func(inference.ImageProgress) error) (inference.ImageResult, error)
}

// EmbeddingEngine computes embeddings.
type EmbeddingEngine interface {
	Embed(ctx context.Context, req inference.EmbeddingRequest) (inference.EmbeddingResult, error)
}

// HealthChecker is implemented by engines that can tell whether they can serve (an upstream
// server answers, a managed process runs). The worker's /healthz reports it.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// How a job's failure is classified. Engines return:
//
//   - an error matching inference.ErrBadRequest when the request itself is wrong (the job fails
//     for good; its message is shown to the client, so it must not leak internals);
//   - an error matching ErrRetryable (wrap with Retryable) when another attempt may succeed: an
//     upstream that crashed, refused the connection, timed out or answered 5xx/429;
//   - anything else for a failure that would only repeat (the job fails for good, and the client
//     sees a generic message while the log gets the cause).
//
// An error with a method Retryable() bool is classified by that method, so engines may also use
// their own types.

// ErrRetryable matches every error an engine marks as worth another attempt.
var ErrRetryable = errors.New("retryable engine error")

// Retryable marks err as worth another attempt; errors.Is(Retryable(err), ErrRetryable) holds and
// errors.Unwrap keeps the cause.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// Retryablef is Retryable(fmt.Errorf(format, args...)).
func Retryablef(format string, args ...any) error {
	return Retryable(fmt.Errorf(format, args...))
}

type retryableError struct{ err error }

func (e *retryableError) Error() string        { return e.err.Error() }
func (e *retryableError) Unwrap() error        { return e.err }
func (e *retryableError) Is(target error) bool { return target == ErrRetryable }

// IsRetryable reports whether err is worth another attempt: it matches ErrRetryable or has a
// Retryable() bool method that says so.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrRetryable) {
		return true
	}
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}
