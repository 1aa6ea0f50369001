package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAIClient drives the API with the official OpenAI Go client, on both brokers.
func TestOpenAIClient(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		c := e.client(e.admin)
		want := strings.Join(testReply, "")

		t.Run("models", func(t *testing.T) {
			page, err := c.Models.List(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range page.Data {
				ids = append(ids, m.ID)
				if m.ID == "text" && (m.JSON.ExtraFields["kind"].Raw() != `"text"` || m.JSON.ExtraFields["context_length"].Raw() != "4096") {
					t.Errorf("model text = %s, want kind text and context_length 4096", m.RawJSON())
				}
			}
			if got := strings.Join(ids, ","); got != "embed,fail,image,slow,text" {
				t.Errorf("models = %s, want embed,fail,image,slow,text", got)
			}
			m, err := c.Models.Get(ctxT(t), "text")
			if err != nil || m.ID != "text" || m.Object != "model" {
				t.Errorf("get model: %+v, %v", m, err)
			}
			_, err = c.Models.Get(ctxT(t), "nope")
			wantStatus(t, err, 404, "model_not_found")
		})

		t.Run("chat", func(t *testing.T) {
			resp, err := c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{
				Model:    "text",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hi")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != want || resp.Choices[0].FinishReason != "stop" {
				t.Fatalf("chat = %s", resp.RawJSON())
			}
			if resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 4 || resp.Usage.TotalTokens != 7 {
				t.Errorf("usage = %+v", resp.Usage)
			}
			if !strings.HasPrefix(resp.ID, "chatcmpl-job_") || resp.Object != "chat.completion" || resp.Model != "text" {
				t.Errorf("id %q object %q model %q", resp.ID, resp.Object, resp.Model)
			}
		})

		t.Run("chat length and n", func(t *testing.T) {
			resp, err := c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{
				Model: "text", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
				MaxCompletionTokens: openai.Int(2), N: openai.Int(2),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 2 || resp.Choices[1].Message.Content != "Hello," || resp.Choices[1].FinishReason != "length" {
				t.Fatalf("chat = %s", resp.RawJSON())
			}
		})

		t.Run("chat stream", func(t *testing.T) {
			stream := c.Chat.Completions.NewStreaming(ctxT(t), openai.ChatCompletionNewParams{
				Model: "text", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			acc := openai.ChatCompletionAccumulator{}
			var deltas []string
			finish := ""
			for stream.Next() {
				ch := stream.Current()
				acc.AddChunk(ch)
				for _, choice := range ch.Choices {
					if choice.Delta.Content != "" {
						deltas = append(deltas, choice.Delta.Content)
					}
					if choice.FinishReason != "" {
						finish = choice.FinishReason
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Join(deltas, "|") != strings.Join(testReply, "|") {
				t.Errorf("deltas = %q, want %q", deltas, testReply)
			}
			if acc.Choices[0].Message.Content != want || finish != "stop" {
				t.Errorf("accumulated %q finish %q", acc.Choices[0].Message.Content, finish)
			}
			if acc.Usage.TotalTokens != 7 {
				t.Errorf("usage = %+v, want 7 tokens in all", acc.Usage)
			}
		})

		t.Run("completion", func(t *testing.T) {
			resp, err := c.Completions.New(ctxT(t), openai.CompletionNewParams{
				Model: "text", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say")}, Echo: openai.Bool(true),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 1 || resp.Choices[0].Text != "Say"+want || resp.Choices[0].FinishReason != "stop" || resp.Usage.TotalTokens != 7 {
				t.Fatalf("completion = %s", resp.RawJSON())
			}
		})

		t.Run("completion stream", func(t *testing.T) {
			stream := c.Completions.NewStreaming(ctxT(t), openai.CompletionNewParams{
				Model: "text", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say")}, MaxTokens: openai.Int(3),
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			var text strings.Builder
			finish, usage := "", int64(0)
			for stream.Next() {
				ch := stream.Current()
				for _, choice := range ch.Choices {
					text.WriteString(choice.Text)
					if choice.FinishReason != "" {
						finish = string(choice.FinishReason)
					}
				}
				usage += ch.Usage.TotalTokens
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if text.String() != "Hello, world" || finish != "length" || usage != 6 {
				t.Errorf("streamed %q finish %q usage %d; want \"Hello, world\" length 6", text.String(), finish, usage)
			}
		})

		t.Run("embeddings", func(t *testing.T) {
			resp, err := c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{
				Model: "embed", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "bcd"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 || resp.Data[1].Embedding[0] != 3 || resp.Data[1].Index != 1 || resp.Usage.PromptTokens != 2 {
				t.Fatalf("embeddings = %s", resp.RawJSON())
			}
			// base64 is what the Python client asks for by default.
			_, body := e.do(t, "POST", "/v1/embeddings", e.admin, `{"model":"embed","input":"ab","encoding_format":"base64"}`)
			if !strings.Contains(body, `"embedding":"AAAAQAAAAAAAAAA/AACAvw=="`) {
				t.Errorf("base64 embeddings = %s", body)
			}
		})

		t.Run("images", func(t *testing.T) {
			resp, err := c.Images.Generate(ctxT(t), openai.ImageGenerateParams{Model: "image", Prompt: "a cat", N: openai.Int(2),
				ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON}, option.WithJSONSet("size", "64x64"))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 {
				t.Fatalf("images = %s", resp.RawJSON())
			}
			raw, err := base64.StdEncoding.DecodeString(resp.Data[1].B64JSON)
			if err != nil || !bytes.Equal(raw, testPNG(1)) {
				t.Fatalf("image 1 is not the worker's PNG (%v)", err)
			}
			resp, err = c.Images.Generate(ctxT(t), openai.ImageGenerateParams{Model: "image", Prompt: "a cat",
				ResponseFormat: openai.ImageGenerateParamsResponseFormatURL})
			if err != nil {
				t.Fatal(err)
			}
			u := resp.Data[0].URL
			if !strings.HasPrefix(u, e.url+"/v1/images/job_") {
				t.Fatalf("url = %q", u)
			}
			// Fetched without a key, as clients fetch image URLs.
			got, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if got.StatusCode != 200 || got.Header.Get("Content-Type") != "image/png" || !bytes.Equal(b, testPNG(0)) {
				t.Fatalf("GET image url: %d %s", got.StatusCode, got.Header.Get("Content-Type"))
			}
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Errorf("not a PNG: %v", err)
			}
			// A tampered signature is refused.
			bad, _ := http.Get(strings.Replace(u, "sig=", "sig=0", 1))
			bad.Body.Close()
			if bad.StatusCode != 404 {
				t.Errorf("tampered image url: %d, want 404", bad.StatusCode)
			}
		})

		t.Run("errors", func(t *testing.T) {
			_, err := c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "nope",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			wantStatus(t, err, 404, "model_not_found")
			_, err = c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "text",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, Temperature: openai.Float(3)})
			wantStatus(t, err, 400, "")
			_, err = c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "fail",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			wantStatus(t, err, 400, "")
			_, err = c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "image",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			wantStatus(t, err, 400, "")
			_, err = c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "text",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}, option.WithAPIKey("nvk_nope_0123456789abcdefghij"))
			wantStatus(t, err, 401, "invalid_api_key")
		})
	})
}

// wantStatus checks that err is an OpenAI API error with status (and code, when not "").
func wantStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an API error with status %d", err, status)
	}
	if apiErr.StatusCode != status || (code != "" && apiErr.Code != code) {
		t.Fatalf("status %d code %q (%s), want %d %q", apiErr.StatusCode, apiErr.Code, apiErr.Message, status, code)
	}
	if apiErr.Message == "" || apiErr.Type == "" {
		t.Errorf("error without message or type: %s", apiErr.RawJSON())
	}
}
