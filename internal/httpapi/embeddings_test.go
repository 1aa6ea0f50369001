package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/neovratz/neovratz/internal/job"
)

// errParam returns an OpenAI error body's param.
func errParam(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct {
			Param *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Param == nil {
		t.Fatalf("not an OpenAI error body with a param: %s", body)
	}
	return *e.Error.Param
}

// shortened is v cut to d values and scaled to unit length, computed here on its own.
func shortened(v []float64, d int) []float64 {
	var n float64
	for _, x := range v[:d] {
		n += x * x
	}
	out := make([]float64, d)
	for i, x := range v[:d] {
		out[i] = x / math.Sqrt(n)
	}
	return out
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-6 {
			return false
		}
	}
	return true
}

// TestEmbeddingDimensions: dimensions cuts each embedding to that many values, scaled back to
// unit length; through the OpenAI client, raw JSON (float and base64) and async jobs.
func TestEmbeddingDimensions(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		c := e.client(e.admin)
		input := openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "bcd"}}
		full, err := c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{Model: "embed", Input: input})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("openai client", func(t *testing.T) {
			resp, err := c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{Model: "embed", Input: input, Dimensions: openai.Int(2)})
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range resp.Data {
				want := shortened(full.Data[i].Embedding, 2)
				if !near(d.Embedding, want) {
					t.Errorf("embedding %d = %v, want %v", i, d.Embedding, want)
				}
			}
			if resp.Usage.PromptTokens != full.Usage.PromptTokens {
				t.Errorf("usage %+v, want %+v", resp.Usage, full.Usage)
			}
			// All of them is the model's own vector (already unit length).
			resp, err = c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{Model: "embed", Input: input, Dimensions: openai.Int(4)})
			if err != nil || !near(resp.Data[1].Embedding, full.Data[1].Embedding) {
				t.Errorf("dimensions 4 = %v (%v), want %v", resp.Data[1].Embedding, err, full.Data[1].Embedding)
			}
			for _, d := range []int64{0, 5} {
				_, err = c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{Model: "embed", Input: input, Dimensions: openai.Int(d)})
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "dimensions" {
					t.Errorf("dimensions %d: %v, want 400 with param dimensions", d, err)
				}
			}
		})

		t.Run("raw json", func(t *testing.T) {
			for _, body := range []string{
				`{"model":"embed","input":"a","dimensions":-1}`,
				`{"model":"embed","input":"a","dimensions":0}`,
				`{"model":"embed","input":"a","dimensions":"2"}`,
				`{"model":"embed","input":"a","dimensions":1.5}`,
				`{"model":"embed","input":"a","dimensions":9}`,
			} {
				resp, rb := e.do(t, "POST", "/v1/embeddings", e.admin, body)
				if resp.StatusCode != 400 || errParam(t, rb) != "dimensions" {
					t.Errorf("%s: %d %s, want 400 with param dimensions", body, resp.StatusCode, rb)
				}
			}
			_, rb := e.do(t, "POST", "/v1/embeddings", e.admin, `{"model":"embed","input":["a","bcd"],"dimensions":3,"encoding_format":"base64"}`)
			var got struct {
				Data []struct{ Embedding string } `json:"data"`
			}
			if err := json.Unmarshal([]byte(rb), &got); err != nil || len(got.Data) != 2 {
				t.Fatalf("base64 body = %s", rb)
			}
			raw, err := base64.StdEncoding.DecodeString(got.Data[1].Embedding)
			if err != nil || len(raw) != 12 {
				t.Fatalf("base64 embedding of %d bytes (%v), want 12", len(raw), err)
			}
			var v []float64
			for k := 0; k < 12; k += 4 {
				v = append(v, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[k:]))))
			}
			if want := shortened(full.Data[1].Embedding, 3); !near(v, want) {
				t.Errorf("base64 dimensions 3 = %v, want %v", v, want)
			}
		})

		t.Run("async job", func(t *testing.T) {
			resp, body := e.do(t, "POST", "/v1/jobs", e.admin, `{"kind":"embedding","input":{"model":"embed","input":["a","bcd"],"dimensions":2}}`)
			if resp.StatusCode != 202 {
				t.Fatalf("submit: %d %s", resp.StatusCode, body)
			}
			id := decodeJob(t, body).ID
			waitStatus(t, e, id, job.StatusSucceeded)
			_, body = e.do(t, "GET", "/v1/jobs/"+id, e.admin, "")
			var v struct {
				Result struct {
					Data []struct{ Embedding []float64 } `json:"data"`
				} `json:"result"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Result.Data) != 2 {
				t.Fatalf("job = %s", body)
			}
			if want := shortened(full.Data[0].Embedding, 2); !near(v.Result.Data[0].Embedding, want) {
				t.Errorf("job's embedding = %v, want %v", v.Result.Data[0].Embedding, want)
			}
			if resp, body := e.do(t, "POST", "/v1/jobs", e.admin, `{"kind":"embedding","input":{"model":"embed","input":"a","dimensions":0}}`); resp.StatusCode != 400 || errParam(t, body) != "input.dimensions" {
				t.Errorf("dimensions 0: %d %s, want 400 with param input.dimensions", resp.StatusCode, body)
			}
			// Too many for the model shows only once it answered: the job says so in place of a result.
			_, body = e.do(t, "POST", "/v1/jobs", e.admin, `{"kind":"embedding","input":{"model":"embed","input":"a","dimensions":9}}`)
			id = decodeJob(t, body).ID
			waitStatus(t, e, id, job.StatusSucceeded)
			_, body = e.do(t, "GET", "/v1/jobs/"+id, e.admin, "")
			if jv := decodeJob(t, body); jv.Result != nil || jv.Error == nil || jv.Error.Code != "invalid_request" {
				t.Errorf("job asking for 9 dimensions of 4 = %s", body)
			}
		})
	})
}
