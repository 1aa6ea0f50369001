package openaiup

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker"
)

// Embed asks the upstream for one embedding per input.
func (e *Engine) Embed(ctx context.Context, req inference.EmbeddingRequest) (inference.EmbeddingResult, error) {
	release, err := e.acquire(ctx)
	if err != nil {
		return inference.EmbeddingResult{}, err
	}
	defer release()
	c := e.newCall(ctx)
	defer c.done()
	resp, err := e.post(c, "/embeddings", openai.EmbeddingRequest{Model: e.model(req.Model), Input: openai.Prompt(req.Input), EncodingFormat: "float"})
	if err != nil {
		return inference.EmbeddingResult{}, e.fail(ctx, c, err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage openai.Usage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return inference.EmbeddingResult{}, e.fail(ctx, c, fmt.Errorf("read embeddings: %w", err))
	}
	res := inference.EmbeddingResult{Embeddings: make([][]float32, len(req.Input)), Usage: list.Usage}
	for _, d := range list.Data {
		if d.Index < 0 || d.Index >= len(req.Input) || res.Embeddings[d.Index] != nil {
			return inference.EmbeddingResult{}, worker.Retryablef("upstream sent embedding %d for %d inputs", d.Index, len(req.Input))
		}
		v, err := decodeEmbedding(d.Embedding)
		if err != nil {
			return inference.EmbeddingResult{}, worker.Retryablef("upstream embedding %d: %w", d.Index, err)
		}
		res.Embeddings[d.Index] = v
	}
	for i, v := range res.Embeddings {
		if v == nil {
			return inference.EmbeddingResult{}, worker.Retryablef("upstream sent no embedding for input %d", i)
		}
	}
	return res, nil
}

// decodeEmbedding reads a list of numbers, or the base64 of little-endian float32s that some
// servers send whatever encoding_format asked for.
func decodeEmbedding(raw json.RawMessage) ([]float32, error) {
	var v []float32
	if err := json.Unmarshal(raw, &v); err == nil {
		return v, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("neither numbers nor base64")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		return nil, fmt.Errorf("bad base64 embedding")
	}
	v = make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
