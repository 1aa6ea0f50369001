package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/neovratz/neovratz/internal/inference"
	nvopenai "github.com/neovratz/neovratz/internal/openai"
)

// TestOpenAIClient drives the API with the official OpenAI Go client, on both brokers.
func TestOpenAIClient(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		c := e.client(e.admin)
		want := expectedChat(t, "hi", 0, 0)

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
			if got := strings.Join(ids, ","); got != "embed,fail,image,medium,slow,text" {
				t.Errorf("models = %s, want embed,fail,image,medium,slow,text", got)
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
			exp := expectedText(t, inference.TextRequest{Model: "text", N: 1, Messages: []nvopenai.Message{
				{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}})
			if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != exp.Choices[0].Text || resp.Choices[0].FinishReason != "stop" {
				t.Fatalf("chat = %s, want %q", resp.RawJSON(), exp.Choices[0].Text)
			}
			if resp.Usage.PromptTokens != int64(exp.Usage.PromptTokens) || resp.Usage.CompletionTokens != 4 || resp.Usage.TotalTokens != int64(exp.Usage.TotalTokens) {
				t.Errorf("usage = %+v, want %+v", resp.Usage, exp.Usage)
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
			exp := expectedChat(t, "hi", 2, 2)
			if len(resp.Choices) != 2 || resp.Choices[1].Message.Content != exp.Choices[1].Text || resp.Choices[1].FinishReason != "length" {
				t.Fatalf("chat = %s, want choice 1 %q", resp.RawJSON(), exp.Choices[1].Text)
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
			// The worker merges deltas that pile up while it writes: their number may vary.
			if len(deltas) == 0 || strings.Join(deltas, "") != want.Choices[0].Text {
				t.Errorf("deltas = %q, want %q", deltas, want.Choices[0].Text)
			}
			if acc.Choices[0].Message.Content != want.Choices[0].Text || finish != "stop" {
				t.Errorf("accumulated %q finish %q", acc.Choices[0].Message.Content, finish)
			}
			if acc.Usage.TotalTokens != int64(want.Usage.TotalTokens) {
				t.Errorf("usage = %+v, want %+v", acc.Usage, want.Usage)
			}
		})

		t.Run("completion", func(t *testing.T) {
			resp, err := c.Completions.New(ctxT(t), openai.CompletionNewParams{
				Model: "text", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say")}, Echo: openai.Bool(true),
			})
			if err != nil {
				t.Fatal(err)
			}
			exp := expectedText(t, inference.TextRequest{Model: "text", Prompt: "Say", N: 1})
			if len(resp.Choices) != 1 || resp.Choices[0].Text != "Say"+exp.Choices[0].Text || resp.Choices[0].FinishReason != "stop" ||
				resp.Usage.TotalTokens != int64(exp.Usage.TotalTokens) {
				t.Fatalf("completion = %s, want %q", resp.RawJSON(), "Say"+exp.Choices[0].Text)
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
			exp := expectedText(t, inference.TextRequest{Model: "text", Prompt: "Say", N: 1, MaxTokens: 3})
			if text.String() != exp.Choices[0].Text || finish != "length" || usage != int64(exp.Usage.TotalTokens) {
				t.Errorf("streamed %q finish %q usage %d; want %q length %d", text.String(), finish, usage, exp.Choices[0].Text, exp.Usage.TotalTokens)
			}
		})

		t.Run("embeddings", func(t *testing.T) {
			resp, err := c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{
				Model: "embed", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "bcd"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 || len(resp.Data[1].Embedding) != 4 || resp.Data[1].Index != 1 || resp.Usage.PromptTokens == 0 {
				t.Fatalf("embeddings = %s", resp.RawJSON())
			}
			// base64 (what the Python client asks for by default): the same floats, little-endian.
			_, body := e.do(t, "POST", "/v1/embeddings", e.admin, `{"model":"embed","input":["a","bcd"],"encoding_format":"base64"}`)
			var b64 struct {
				Data []struct{ Embedding string } `json:"data"`
			}
			_ = json.Unmarshal([]byte(body), &b64)
			raw, err := base64.StdEncoding.DecodeString(b64.Data[1].Embedding)
			if err != nil || len(raw) != 16 || math.Float32frombits(binary.LittleEndian.Uint32(raw)) != float32(resp.Data[1].Embedding[0]) {
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
			if err != nil {
				t.Fatal(err)
			}
			if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
				t.Fatalf("image 1 is not a 64x64 PNG (%v)", err)
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
			if got.StatusCode != 200 || got.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("GET image url: %d %s", got.StatusCode, got.Header.Get("Content-Type"))
			}
			if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() != 512 {
				t.Errorf("not a 512x512 PNG: %v", err)
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
			// The worker refuses more tokens than the model's limit: a job that fails as a bad request.
			_, err = c.Chat.Completions.New(ctxT(t), openai.ChatCompletionNewParams{Model: "fail",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxCompletionTokens: openai.Int(2)})
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
