package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

func decodeStatus(ev broker.Event) (broker.StatusEvent, error) {
	var st broker.StatusEvent
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		return st, fmt.Errorf("status event %s: %w", ev.ID, err)
	}
	return st, nil
}

// jobFailure is the error a client gets for a job that did not succeed. A job's error message
// is written to be shown to its owner.
func jobFailure(j job.Job) *Error {
	switch j.Status {
	case job.StatusCanceled:
		return &Error{Status: http.StatusConflict, Type: openai.ErrTypeInvalidRequest, Code: "job_canceled", Message: "The request's job was canceled."}
	case job.StatusExpired:
		return errTimeout("No worker started the request before its deadline.")
	}
	e := j.Error
	if e == nil {
		return errInternal(fmt.Errorf("job %s %s without an error", j.ID, j.Status))
	}
	switch e.Code {
	case "bad_request":
		return errBadRequest("", "%s", e.Message)
	case "engine_unavailable":
		return errUnavailable(e.Code, e.Message, 5*time.Second)
	case "engine_timeout":
		return &Error{Status: http.StatusGatewayTimeout, Type: openai.ErrTypeTimeout, Code: e.Code, Message: e.Message}
	}
	code := e.Code
	if code == "" {
		code = "job_failed"
	}
	return &Error{Status: http.StatusInternalServerError, Type: openai.ErrTypeServer, Code: code, Message: e.Message}
}

// textCall renders one chat or completion call, streamed or not.
type textCall struct {
	chat         bool
	id           string // chatcmpl-<job> or cmpl-<job>
	model        string
	created      int64
	n            int
	includeUsage bool
	logprobs     bool   // the client asked for logprobs
	echo         string // completions with echo: the prompt, sent before the text
	sent         []int  // bytes of each choice's text already streamed
}

func newTextCall(chat bool, j job.Job, n int) *textCall {
	prefix := "cmpl-"
	if chat {
		prefix = "chatcmpl-"
	}
	return &textCall{chat: chat, id: prefix + j.ID, model: j.Model, created: j.CreatedAt.Unix(), n: n, sent: make([]int, n)}
}

func ptr[T any](v T) *T { return &v }

// startChunks open a stream: the assistant role of every chat choice, or a completion's echo.
func (c *textCall) startChunks() []any {
	var out []any
	for i := range c.n {
		if c.chat {
			out = append(out, c.chatChunk(openai.ChatChunkChoice{Index: i, Delta: openai.ChatDelta{Role: "assistant"}}))
		} else if c.echo != "" {
			out = append(out, c.completionChunk(openai.CompletionChoice{Index: i, Text: c.echo}))
		}
	}
	return out
}

func (c *textCall) chatChunk(choices ...openai.ChatChunkChoice) openai.ChatCompletionChunk {
	return openai.ChatCompletionChunk{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model, Choices: choices}
}

func (c *textCall) completionChunk(choices ...openai.CompletionChoice) openai.Completion {
	if choices == nil {
		choices = []openai.CompletionChoice{}
	}
	return openai.Completion{ID: c.id, Object: "text_completion", Created: c.created, Model: c.model, Choices: choices}
}

// deltaChunk renders a delta event; nil when it carries nothing for the client.
func (c *textCall) deltaChunk(d inference.TextDelta) any {
	if d.Index < 0 || d.Index >= c.n || (d.Text == "" && len(d.Logprobs) == 0) {
		return nil
	}
	c.sent[d.Index] += len(d.Text)
	if c.chat {
		ch := openai.ChatChunkChoice{Index: d.Index, Delta: openai.ChatDelta{Content: d.Text}}
		if c.logprobs {
			ch.Logprobs = &openai.ChatLogprobs{Content: nonNil(d.Logprobs)}
		}
		return c.chatChunk(ch)
	}
	ch := openai.CompletionChoice{Index: d.Index, Text: d.Text}
	if c.logprobs {
		ch.Logprobs = legacyLogprobs(d.Logprobs, 0)
	}
	return c.completionChunk(ch)
}

// finishChunks end each choice: what of its text was not streamed (an engine may not stream
// everything), then its finish reason, then the usage when asked.
func (c *textCall) finishChunks(res inference.TextResult) []any {
	var out []any
	for _, ch := range res.Choices {
		if ch.Index < 0 || ch.Index >= c.n {
			continue
		}
		rest := ""
		if c.sent[ch.Index] < len(ch.Text) {
			rest = ch.Text[c.sent[ch.Index]:]
		}
		fr := ch.FinishReason
		if c.chat {
			out = append(out, c.chatChunk(openai.ChatChunkChoice{Index: ch.Index, Delta: openai.ChatDelta{Content: rest}, FinishReason: &fr}))
		} else {
			out = append(out, c.completionChunk(openai.CompletionChoice{Index: ch.Index, Text: rest, FinishReason: &fr}))
		}
	}
	if c.includeUsage {
		u := res.Usage
		if c.chat {
			chunk := c.chatChunk()
			chunk.Choices = []openai.ChatChunkChoice{}
			chunk.Usage = &u
			out = append(out, chunk)
		} else {
			chunk := c.completionChunk()
			chunk.Usage = &u
			out = append(out, chunk)
		}
	}
	return out
}

// response renders the non-streamed response.
func (c *textCall) response(res inference.TextResult) any {
	u := res.Usage
	if c.chat {
		out := openai.ChatCompletion{ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model, Usage: &u, Choices: []openai.ChatChoice{}}
		for _, ch := range res.Choices {
			cc := openai.ChatChoice{Index: ch.Index, Message: openai.ResponseMessage{Role: "assistant", Content: ch.Text}, FinishReason: ch.FinishReason}
			if c.logprobs {
				cc.Logprobs = &openai.ChatLogprobs{Content: nonNil(ch.Logprobs)}
			}
			out.Choices = append(out.Choices, cc)
		}
		return out
	}
	out := c.completionChunk()
	out.Usage = &u
	for _, ch := range res.Choices {
		fr := ch.FinishReason
		cc := openai.CompletionChoice{Index: ch.Index, Text: c.echo + ch.Text, FinishReason: &fr}
		if c.logprobs {
			cc.Logprobs = legacyLogprobs(ch.Logprobs, len(c.echo))
		}
		out.Choices = append(out.Choices, cc)
	}
	return out
}

func nonNil(l []openai.TokenLogprob) []openai.TokenLogprob {
	if l == nil {
		return []openai.TokenLogprob{}
	}
	return l
}

// legacyLogprobs renders logprobs the way /v1/completions has them; offset is where the
// generated text starts in the choice's text.
func legacyLogprobs(l []openai.TokenLogprob, offset int) *openai.CompletionLogprobs {
	out := &openai.CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, t := range l {
		out.Tokens = append(out.Tokens, t.Token)
		out.TokenLogprobs = append(out.TokenLogprobs, t.Logprob)
		top := map[string]float64{}
		for _, a := range t.TopLogprobs {
			top[a.Token] = a.Logprob
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(t.Token)
	}
	return out
}

// checkDimensions checks an embedding request's dimensions as far as it can be before the
// model answers: a positive integer. param names the field in errors.
func checkDimensions(dims *int, param string) error {
	if dims != nil && *dims < 1 {
		return errBadRequest(param, "must be a positive integer")
	}
	return nil
}

// shortenEmbeddings applies OpenAI's dimensions to res: each vector is cut to its first dims
// values and scaled back to unit length, as text-embedding-3 models return them. dims above
// the model's size is a client error (param names the field).
func shortenEmbeddings(res *inference.EmbeddingResult, dims int, model, param string) error {
	for i, v := range res.Embeddings {
		if dims > len(v) {
			return errBadRequest(param, "must be at most %d, the size of the embeddings of the model %q", len(v), model)
		}
		v = v[:dims]
		var sum float64
		for _, x := range v {
			sum += float64(x) * float64(x)
		}
		out := make([]float32, dims)
		if norm := math.Sqrt(sum); norm > 0 {
			for k, x := range v {
				out[k] = float32(float64(x) / norm)
			}
		}
		res.Embeddings[i] = out
	}
	return nil
}

// embeddingResponse renders an embedding result.
func embeddingResponse(model, format string, res inference.EmbeddingResult) openai.EmbeddingList {
	out := openai.EmbeddingList{Object: "list", Model: model, Usage: res.Usage, Data: []openai.Embedding{}}
	for i, v := range res.Embeddings {
		var e any = v
		if format == "base64" {
			b := make([]byte, 4*len(v))
			for k, f := range v {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(b)
		} else if v == nil {
			e = []float32{}
		}
		out.Data = append(out.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: e})
	}
	return out
}

// imagesResponse renders an image result; urlFor, when not nil, gives each image's URL instead
// of its bytes.
func imagesResponse(created int64, res inference.ImageResult, urlFor func(i int) string) openai.ImagesResponse {
	out := openai.ImagesResponse{Created: created, Data: []openai.Image{}}
	for i, img := range res.Images {
		if urlFor != nil {
			out.Data = append(out.Data, openai.Image{URL: urlFor(i)})
		} else {
			out.Data = append(out.Data, openai.Image{B64JSON: base64.StdEncoding.EncodeToString(img.PNG)})
		}
	}
	return out
}
