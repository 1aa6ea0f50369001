package client

import (
	"context"

	"github.com/openai/openai-go/v3"
)

// Message is one turn of a chat.
type Message struct {
	Role    string // system, user or assistant
	Content string
}

// ChatRequest asks for the next assistant turn of a chat.
type ChatRequest struct {
	Model       string
	Messages    []Message
	MaxTokens   int      // 0: the server's default
	Temperature *float64 // nil: the server's default
	Seed        *int64
}

// ChatResult is the finished assistant turn.
type ChatResult struct {
	Text                           string
	FinishReason                   string // stop or length
	PromptTokens, CompletionTokens int
}

// Chat streams the reply to req, handing each piece of text to onDelta as it arrives, and
// returns the whole reply. The stream stops when ctx ends.
func (c *Client) Chat(ctx context.Context, req ChatRequest, onDelta func(string)) (ChatResult, error) {
	params := openai.ChatCompletionNewParams{
		Model:         req.Model,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case "assistant":
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		}
	}
	if req.MaxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
	}
	if req.Temperature != nil {
		params.Temperature = openai.Float(*req.Temperature)
	}
	if req.Seed != nil {
		params.Seed = openai.Int(*req.Seed)
	}
	stream := c.chat.NewStreaming(ctx, params)
	defer stream.Close()
	var res ChatResult
	var text []byte
	for stream.Next() {
		chunk := stream.Current()
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			if d := ch.Delta.Content; d != "" {
				text = append(text, d...)
				if onDelta != nil {
					onDelta(d)
				}
			}
			if ch.FinishReason != "" {
				res.FinishReason = ch.FinishReason
			}
		}
		if u := chunk.Usage; u.TotalTokens > 0 {
			res.PromptTokens, res.CompletionTokens = int(u.PromptTokens), int(u.CompletionTokens)
		}
	}
	res.Text = string(text)
	if err := stream.Err(); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, c.convert(err)
	}
	return res, nil
}
