// Package inference defines what an engine is asked and what it answers, in the shapes that
// travel inside a job: the worker turns a job's input (an OpenAI request, see package openai)
// into a request here, writes the engine's deltas and progress to the job's event log, and stores
// its result as the job's result; the API turns those back into OpenAI responses and stream
// chunks. Keeping one shape for every engine is what lets any engine serve any API replica.
package inference

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/neovratz/neovratz/internal/openai"
)

// TextRequest asks for text: a chat (Messages set) or a plain completion (Prompt set).
type TextRequest struct {
	Model    string           `json:"model"`
	Messages []openai.Message `json:"messages,omitempty"`
	Prompt   string           `json:"prompt,omitempty"`
	// MaxTokens is the most tokens to generate; 0 lets the engine stop at its context.
	MaxTokens int             `json:"max_tokens,omitempty"`
	Sampling  openai.Sampling `json:"sampling"`
	// N is how many independent choices to generate (at least 1).
	N int `json:"n"`
	// Logprobs asks for each token's log probability, TopLogprobs for that many alternatives.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs int  `json:"top_logprobs,omitempty"`
}

// Chat reports whether r is a chat request.
func (r TextRequest) Chat() bool { return r.Messages != nil }

// TextDelta is the data of a delta event: new text of one choice.
type TextDelta struct {
	Index    int                   `json:"index"`
	Text     string                `json:"text"`
	Logprobs []openai.TokenLogprob `json:"logprobs,omitempty"`
}

// TextResult is a text job's result.
type TextResult struct {
	Choices []TextChoice `json:"choices"`
	Usage   openai.Usage `json:"usage"`
}

// TextChoice is one finished choice.
type TextChoice struct {
	Index        int                   `json:"index"`
	Text         string                `json:"text"`
	FinishReason string                `json:"finish_reason"` // openai.FinishStop or openai.FinishLength
	Logprobs     []openai.TokenLogprob `json:"logprobs,omitempty"`
}

// ImageRequest asks for images.
type ImageRequest struct {
	Model          string  `json:"model"`
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	N              int     `json:"n"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Steps          int     `json:"steps,omitempty"`     // 0 = the engine's default
	CFGScale       float64 `json:"cfg_scale,omitempty"` // 0 = the engine's default
	Seed           int64   `json:"seed"`                // -1 = pick one and report it
	Sampler        string  `json:"sampler,omitempty"`
}

// ImageProgress is the data of a progress event of an image job.
type ImageProgress struct {
	Index int `json:"index"` // which of the N images
	Step  int `json:"step"`
	Steps int `json:"steps"`
}

// ImageResult is an image job's result.
type ImageResult struct {
	Images []GeneratedImage `json:"images"`
}

// GeneratedImage is one PNG and the seed that made it.
type GeneratedImage struct {
	PNG  []byte `json:"png"` // base64 in JSON
	Seed int64  `json:"seed"`
}

// EmbeddingRequest asks for one embedding per input.
type EmbeddingRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

// EmbeddingResult is an embedding job's result.
type EmbeddingResult struct {
	Embeddings [][]float32  `json:"embeddings"`
	Usage      openai.Usage `json:"usage"`
}

// Limits on requests; an engine or config may lower them.
const (
	MaxN         = 16
	MaxImageSide = 2048
	MaxSteps     = 150
)

// ErrBadRequest matches every error that a request's content caused (the client's fault, never
// worth a retry).
var ErrBadRequest = errors.New("bad request")

// BadRequestError says which parameter of a request is wrong.
type BadRequestError struct {
	Param  string
	Reason string
}

func (e *BadRequestError) Error() string { return e.Param + ": " + e.Reason }

// Is makes errors.Is(err, ErrBadRequest) true.
func (e *BadRequestError) Is(target error) bool { return target == ErrBadRequest }

func bad(param, format string, args ...any) error {
	return &BadRequestError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// FromChat validates an OpenAI chat request and returns the engine request it asks for.
func FromChat(req *openai.ChatCompletionRequest) (TextRequest, error) {
	if req.Model == "" {
		return TextRequest{}, bad("model", "is required")
	}
	if len(req.Messages) == 0 {
		return TextRequest{}, bad("messages", "must hold at least one message")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			return TextRequest{}, bad(fmt.Sprintf("messages[%d].role", i), "must be system, user or assistant (got %q)", m.Role)
		}
	}
	maxTokens := req.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = req.MaxTokens
	}
	r := TextRequest{Model: req.Model, Messages: req.Messages, Sampling: req.Sampling, Logprobs: req.Logprobs}
	if req.TopLogprobs != nil {
		if !req.Logprobs {
			return TextRequest{}, bad("top_logprobs", "needs logprobs set to true")
		}
		if *req.TopLogprobs < 0 || *req.TopLogprobs > 20 {
			return TextRequest{}, bad("top_logprobs", "must be between 0 and 20")
		}
		r.TopLogprobs = *req.TopLogprobs
	}
	return r, finishText(&r, maxTokens, req.N)
}

// FromCompletion validates an OpenAI completion request with a single prompt and returns the
// engine request it asks for.
func FromCompletion(req *openai.CompletionRequest) (TextRequest, error) {
	if req.Model == "" {
		return TextRequest{}, bad("model", "is required")
	}
	if len(req.Prompt) != 1 {
		return TextRequest{}, bad("prompt", "must be a single string")
	}
	r := TextRequest{Model: req.Model, Prompt: req.Prompt[0], Sampling: req.Sampling}
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > 5 {
			return TextRequest{}, bad("logprobs", "must be between 0 and 5")
		}
		r.Logprobs, r.TopLogprobs = true, *req.Logprobs
	}
	return r, finishText(&r, req.MaxTokens, req.N)
}

func finishText(r *TextRequest, maxTokens, n *int) error {
	if maxTokens != nil {
		if *maxTokens < 1 {
			return bad("max_tokens", "must be at least 1")
		}
		r.MaxTokens = *maxTokens
	}
	r.N = 1
	if n != nil {
		if *n < 1 || *n > MaxN {
			return bad("n", "must be between 1 and %d", MaxN)
		}
		r.N = *n
	}
	s := r.Sampling
	switch {
	case s.Temperature != nil && (*s.Temperature < 0 || *s.Temperature > 2):
		return bad("temperature", "must be between 0 and 2")
	case s.TopP != nil && (*s.TopP <= 0 || *s.TopP > 1):
		return bad("top_p", "must be greater than 0 and at most 1")
	case s.TopK != nil && *s.TopK < 0:
		return bad("top_k", "must not be negative")
	case s.MinP != nil && (*s.MinP < 0 || *s.MinP > 1):
		return bad("min_p", "must be between 0 and 1")
	case s.PresencePenalty != nil && (*s.PresencePenalty < -2 || *s.PresencePenalty > 2):
		return bad("presence_penalty", "must be between -2 and 2")
	case s.FrequencyPenalty != nil && (*s.FrequencyPenalty < -2 || *s.FrequencyPenalty > 2):
		return bad("frequency_penalty", "must be between -2 and 2")
	case s.RepetitionPenalty != nil && (*s.RepetitionPenalty <= 0 || *s.RepetitionPenalty > 10):
		return bad("repetition_penalty", "must be greater than 0 and at most 10")
	case len(s.Stop) > 4:
		return bad("stop", "may hold at most 4 sequences")
	}
	for _, st := range s.Stop {
		if st == "" {
			return bad("stop", "sequences must not be empty")
		}
	}
	return nil
}

// FromImage validates an OpenAI image request and returns the engine request it asks for.
func FromImage(req *openai.ImageRequest) (ImageRequest, error) {
	if req.Model == "" {
		return ImageRequest{}, bad("model", "is required")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return ImageRequest{}, bad("prompt", "is required")
	}
	r := ImageRequest{Model: req.Model, Prompt: req.Prompt, NegativePrompt: req.NegativePrompt, N: 1, Width: 512, Height: 512, Seed: -1, Sampler: req.Sampler}
	if req.N != nil {
		if *req.N < 1 || *req.N > MaxN {
			return ImageRequest{}, bad("n", "must be between 1 and %d", MaxN)
		}
		r.N = *req.N
	}
	if req.Size != "" {
		w, h, ok := strings.Cut(req.Size, "x")
		wi, err1 := strconv.Atoi(w)
		hi, err2 := strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || wi < 64 || hi < 64 || wi > MaxImageSide || hi > MaxImageSide || wi%8 != 0 || hi%8 != 0 {
			return ImageRequest{}, bad("size", "must be WIDTHxHEIGHT, each a multiple of 8 between 64 and %d (got %q)", MaxImageSide, req.Size)
		}
		r.Width, r.Height = wi, hi
	}
	switch req.ResponseFormat {
	case "", "b64_json", "url":
	default:
		return ImageRequest{}, bad("response_format", "must be b64_json or url")
	}
	if req.Steps != nil {
		if *req.Steps < 1 || *req.Steps > MaxSteps {
			return ImageRequest{}, bad("steps", "must be between 1 and %d", MaxSteps)
		}
		r.Steps = *req.Steps
	}
	if req.CFGScale != nil {
		if *req.CFGScale < 0 || *req.CFGScale > 30 {
			return ImageRequest{}, bad("cfg_scale", "must be between 0 and 30")
		}
		r.CFGScale = *req.CFGScale
	}
	if req.Seed != nil {
		if *req.Seed < -1 {
			return ImageRequest{}, bad("seed", "must be -1 (random) or a non-negative number")
		}
		r.Seed = *req.Seed
	}
	return r, nil
}

// FromEmbedding validates an OpenAI embedding request and returns the engine request it asks for.
func FromEmbedding(req *openai.EmbeddingRequest) (EmbeddingRequest, error) {
	if req.Model == "" {
		return EmbeddingRequest{}, bad("model", "is required")
	}
	if len(req.Input) == 0 || len(req.Input) > 2048 {
		return EmbeddingRequest{}, bad("input", "must hold between 1 and 2048 strings")
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return EmbeddingRequest{}, bad("encoding_format", "must be float or base64")
	}
	return EmbeddingRequest{Model: req.Model, Input: req.Input}, nil
}

// Decode unmarshals a request body into v, turning JSON errors into a *BadRequestError that
// names the field. Unknown fields are ignored, as OpenAI clients send fields an engine may not use.
func Decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return bad(te.Field, "has the wrong type (want %s)", te.Type)
		}
		return bad("body", "is not valid JSON: %v", err)
	}
	return nil
}
