package inference

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/neovratz/neovratz/internal/openai"
)

func TestFromChat(t *testing.T) {
	tests := []struct {
		body  string
		param string // "" = valid
	}{
		{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, ""},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"max_tokens":9,"n":2,"stop":"x","logprobs":true,"top_logprobs":3}`, ""},
		{`{"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"m","messages":[{"role":"wizard","content":"hi"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"n":17}`, "n"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":3}`, "temperature"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"top_p":0}`, "top_p"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`, "stop"},
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"top_logprobs":2}`, "top_logprobs"},
	}
	for _, tc := range tests {
		var req openai.ChatCompletionRequest
		if err := Decode([]byte(tc.body), &req); err != nil {
			t.Fatalf("decode %s: %v", tc.body, err)
		}
		r, err := FromChat(&req)
		if tc.param == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		var be *BadRequestError
		if !errors.As(err, &be) || be.Param != tc.param || !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: err = %v, want a bad request on %q", tc.body, err, tc.param)
		}
		_ = r
	}
	var req openai.ChatCompletionRequest
	_ = json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"max_tokens":9}`), &req)
	r, _ := FromChat(&req)
	if r.MaxTokens != 5 || r.N != 1 || !r.Chat() {
		t.Errorf("request = %+v, want max_completion_tokens to win, n = 1, chat", r)
	}
}

func TestFromImage(t *testing.T) {
	tests := []struct {
		body  string
		param string
	}{
		{`{"model":"sd","prompt":"a cat"}`, ""},
		{`{"model":"sd","prompt":"a cat","size":"256x384","n":2,"steps":4,"cfg_scale":1,"seed":7}`, ""},
		{`{"model":"sd","prompt":" "}`, "prompt"},
		{`{"model":"sd","prompt":"a","size":"big"}`, "size"},
		{`{"model":"sd","prompt":"a","size":"100x100"}`, "size"},
		{`{"model":"sd","prompt":"a","size":"4096x512"}`, "size"},
		{`{"model":"sd","prompt":"a","response_format":"gif"}`, "response_format"},
		{`{"model":"sd","prompt":"a","steps":0}`, "steps"},
		{`{"model":"sd","prompt":"a","seed":-2}`, "seed"},
	}
	for _, tc := range tests {
		var req openai.ImageRequest
		if err := Decode([]byte(tc.body), &req); err != nil {
			t.Fatalf("decode %s: %v", tc.body, err)
		}
		r, err := FromImage(&req)
		if tc.param == "" {
			if err != nil || r.Width%8 != 0 || r.N < 1 {
				t.Errorf("%s: %+v, %v", tc.body, r, err)
			}
			continue
		}
		var be *BadRequestError
		if !errors.As(err, &be) || be.Param != tc.param {
			t.Errorf("%s: err = %v, want a bad request on %q", tc.body, err, tc.param)
		}
	}
}

func TestDecodeNamesTheField(t *testing.T) {
	var req openai.ChatCompletionRequest
	err := Decode([]byte(`{"model":"m","max_tokens":"ten"}`), &req)
	var be *BadRequestError
	if !errors.As(err, &be) || be.Param != "max_tokens" {
		t.Fatalf("err = %v, want a bad request on max_tokens", err)
	}
	if err := Decode([]byte(`{"model":`), &req); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("truncated body: err = %v, want a bad request", err)
	}
}
