package httpapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// sseWriter writes server-sent events. Every write is flushed at once: the point of a stream is
// that each token reaches the client when it exists.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	// extend, when positive, pushes the write deadline this far past every write, for streams
	// that may outlast the deadline every response starts with.
	extend time.Duration
}

// startSSE sends the headers of an event stream.
func startSSE(w http.ResponseWriter, extend time.Duration) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w), extend: extend}
	_ = s.flush()
	return s
}

func (s *sseWriter) write(b []byte) error {
	if s.extend > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.extend))
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.flush()
}

func (s *sseWriter) flush() error { return s.rc.Flush() }

// data writes one "data: <json>" event, as OpenAI streams do.
func (s *sseWriter) data(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(b)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	return s.write(buf)
}

// done ends an OpenAI stream.
func (s *sseWriter) done() error { return s.write([]byte("data: [DONE]\n\n")) }

// event writes an event with an id and a type, which a client resumes from with Last-Event-ID.
func (s *sseWriter) event(id, typ string, data []byte) error {
	buf := make([]byte, 0, len(id)+len(typ)+len(data)+32)
	buf = append(buf, "id: "...)
	buf = append(buf, id...)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, typ...)
	buf = append(buf, "\ndata: "...)
	if len(data) == 0 {
		data = []byte("null")
	}
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	return s.write(buf)
}

// comment keeps an idle stream open through proxies that close silent connections.
func (s *sseWriter) comment() error { return s.write([]byte(": keep-alive\n\n")) }

// errorEvent reports an error inside a stream already started, in the shape OpenAI's clients
// recognise.
func (s *sseWriter) errorEvent(e *Error) error {
	return s.data(map[string]any{"error": e.body()})
}
