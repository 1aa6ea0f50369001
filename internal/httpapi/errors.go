package httpapi

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// Error is an error a handler returns to answer with a status and a message the client may
// see. Cause, when set, is logged and never sent.
type Error struct {
	Status  int
	Type    string // OpenAI's error type, such as invalid_request_error
	Code    string // machine-readable, optional
	Param   string // the request parameter at fault, optional
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration
	Cause      error
}

// Error is the status, the message and the cause, for logs.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

func errBadRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: openai.ErrTypeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

func errUnauthorized(code, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Type: openai.ErrTypeAuthentication, Code: code, Message: msg}
}

func errForbidden(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Type: openai.ErrTypePermission, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Type: openai.ErrTypeNotFound, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errConflict(code, msg string) *Error {
	return &Error{Status: http.StatusConflict, Type: openai.ErrTypeInvalidRequest, Code: code, Message: msg}
}

func errRateLimited(code, msg string, retry time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: openai.ErrTypeRateLimit, Code: code, Message: msg, RetryAfter: retry}
}

func errUnavailable(code, msg string, retry time.Duration) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: openai.ErrTypeUnavailable, Code: code, Message: msg, RetryAfter: retry}
}

func errTimeout(msg string) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Type: openai.ErrTypeTimeout, Code: "timeout", Message: msg}
}

// errInternal hides cause from the client.
func errInternal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Type: openai.ErrTypeServer, Code: "internal_error",
		Message: "the server had an error while processing your request", Cause: cause}
}

// asError turns any error into the *Error the client gets, recognising the typed errors of the
// packages below (bad requests, unknown jobs, full queues, oversized bodies).
func asError(err error) *Error {
	var e *Error
	var bre *inference.BadRequestError
	var ve *job.ValidationError
	var mbe *http.MaxBytesError
	var qfe *broker.QueueFullError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Type: openai.ErrTypeInvalidRequest, Code: "request_too_large",
			Message: fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)}
	case errors.As(err, &bre):
		return errBadRequest(bre.Param, "%s", bre.Error())
	case errors.As(err, &ve):
		return errBadRequest(ve.Field, "%s", ve.Error())
	case errors.As(err, &qfe):
		return errRateLimited("queue_full", fmt.Sprintf("the queue for model %s is full; retry later", qfe.Model), 5*time.Second)
	case errors.Is(err, broker.ErrNotFound):
		return errNotFound("job_not_found", "no such job")
	}
	return errInternal(err)
}

// writeError answers with err in OpenAI's error envelope. The client gets e.Message; the cause
// of a server error goes to the log.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := asError(err)
	info := infoFrom(r.Context())
	if info != nil {
		info.err = err
	}
	if e.Status >= 500 && e.Cause != nil {
		log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("request_id", info.requestID()),
			slog.String("err", e.Cause.Error()))
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, openai.ErrorResponse{Error: e.body()})
}

func (e *Error) body() openai.ErrorBody {
	b := openai.ErrorBody{Message: e.Message, Type: e.Type}
	if e.Type == "" {
		b.Type = openai.ErrTypeServer
	}
	if e.Param != "" {
		b.Param = &e.Param
	}
	if e.Code != "" {
		b.Code = &e.Code
	}
	return b
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are written: a failure is a bug, and the client gets a plain 500.
		http.Error(w, `{"error":{"message":"internal error","type":"server_error"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}
