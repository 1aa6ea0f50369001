package openaiup

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
)

// StatusError is an upstream's answer with a non-2xx status. It classifies itself for the
// worker: 400, 413 and 422 mean the request is wrong (errors.Is inference.ErrBadRequest, and the
// message, the upstream's own, is shown to the client); 408, 429 and 5xx are worth a retry; any
// other status (401, 403, 404: a wrong key, model name or URL in the worker's config) fails the
// job without a retry and without showing the upstream's words to the client.
type StatusError struct {
	Status  int
	Message string // the upstream's error message, or the start of its body
	Param   string // the parameter the upstream blamed, if it said
}

func (e *StatusError) Error() string {
	if e.badRequest() {
		if e.Param != "" && !strings.Contains(e.Message, e.Param) {
			return e.Param + ": " + e.Message
		}
		return e.Message
	}
	return fmt.Sprintf("upstream answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func (e *StatusError) badRequest() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnprocessableEntity
}

// Is makes errors.Is(err, inference.ErrBadRequest) true for the statuses that blame the request.
func (e *StatusError) Is(target error) bool {
	return target == inference.ErrBadRequest && e.badRequest()
}

// Retryable reports whether another attempt may succeed (the worker asks).
func (e *StatusError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// statusError reads an error response.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &StatusError{Status: resp.StatusCode}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var eb openai.ErrorBody
		var s string
		switch {
		case json.Unmarshal(env.Error, &eb) == nil && eb.Message != "":
			e.Message = eb.Message
			if eb.Param != nil {
				e.Param = *eb.Param
			}
		case json.Unmarshal(env.Error, &s) == nil: // some servers send {"error": "text"}
			e.Message = s
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}
