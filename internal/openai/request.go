// Package openai holds the wire format of the OpenAI API that neovratz speaks: requests it
// accepts, responses and stream chunks it sends, and the error envelope. The API parses and
// renders with it, workers decode job inputs with it (a job's input is the OpenAI request that
// made it), and the openai upstream engine speaks it to other servers.
package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ChatCompletionRequest is the body of POST /v1/chat/completions.
type ChatCompletionRequest struct {
	Model               string         `json:"model"`
	Messages            []Message      `json:"messages"`
	MaxTokens           *int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *StreamOptions `json:"stream_options,omitempty"`
	Sampling
	Logprobs    bool   `json:"logprobs,omitempty"`
	TopLogprobs *int   `json:"top_logprobs,omitempty"`
	N           *int   `json:"n,omitempty"`
	User        string `json:"user,omitempty"`
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	Model         string         `json:"model"`
	Prompt        Prompt         `json:"prompt"`
	MaxTokens     *int           `json:"max_tokens,omitempty"`
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	Sampling
	// Logprobs is the number of most likely tokens to report per position (0-5), as the legacy API has it.
	Logprobs *int   `json:"logprobs,omitempty"`
	Echo     bool   `json:"echo,omitempty"`
	N        *int   `json:"n,omitempty"`
	User     string `json:"user,omitempty"`
}

// Sampling holds the sampling parameters both text endpoints share, including the common
// extensions (top_k, min_p, repetition_penalty) that vLLM and llama.cpp accept.
type Sampling struct {
	Temperature       *float64 `json:"temperature,omitempty"`
	TopP              *float64 `json:"top_p,omitempty"`
	TopK              *int     `json:"top_k,omitempty"`
	MinP              *float64 `json:"min_p,omitempty"`
	PresencePenalty   *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty  *float64 `json:"frequency_penalty,omitempty"`
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	Seed              *int64   `json:"seed,omitempty"`
	Stop              Stop     `json:"stop,omitempty"`
}

// StreamOptions is the stream_options object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// Message is one chat message. Content arrives as a string or as a list of content parts; only
// text parts are supported, and they are joined.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	Name    string  `json:"name,omitempty"`
}

// Content is a message's text, decoded from a string or from text content parts.
type Content string

// UnmarshalJSON accepts "text", null, or [{"type":"text","text":"…"}, …].
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content(s)
		return nil
	case len(b) > 0 && b[0] == '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		var sb strings.Builder
		for i, p := range parts {
			if p.Type != "text" {
				return fmt.Errorf("content part %d has type %q: only text parts are supported", i, p.Type)
			}
			if p.Text == nil {
				return fmt.Errorf("content part %d has no text", i)
			}
			sb.WriteString(*p.Text)
		}
		*c = Content(sb.String())
		return nil
	}
	return errors.New("content must be a string or a list of text parts")
}

// Stop is the stop field: a string or a list of strings.
type Stop []string

// UnmarshalJSON accepts "s", ["a","b"] or null.
func (s *Stop) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or a list of strings")
	}
	*s = many
	return nil
}

// Prompt is the completions prompt: a string or a list of strings (each a separate prompt).
type Prompt []string

// UnmarshalJSON accepts "text" or ["a","b"].
func (p *Prompt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*p = Prompt{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("prompt must be a string or a list of strings")
	}
	*p = many
	return nil
}

// MarshalJSON writes a single prompt as a plain string.
func (p Prompt) MarshalJSON() ([]byte, error) {
	if len(p) == 1 {
		return json.Marshal(p[0])
	}
	return json.Marshal([]string(p))
}

// EmbeddingRequest is the body of POST /v1/embeddings.
type EmbeddingRequest struct {
	Model          string `json:"model"`
	Input          Prompt `json:"input"`
	EncodingFormat string `json:"encoding_format,omitempty"` // "float" (default) or "base64"
	Dimensions     *int   `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

// ImageRequest is the body of POST /v1/images/generations, with the extensions Stable Diffusion
// front ends expose.
type ImageRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              *int   `json:"n,omitempty"`
	Size           string `json:"size,omitempty"`            // "WxH"
	ResponseFormat string `json:"response_format,omitempty"` // "b64_json" or "url"
	User           string `json:"user,omitempty"`

	NegativePrompt string   `json:"negative_prompt,omitempty"`
	Steps          *int     `json:"steps,omitempty"`
	CFGScale       *float64 `json:"cfg_scale,omitempty"`
	Seed           *int64   `json:"seed,omitempty"`
	Sampler        string   `json:"sampler,omitempty"`
}
