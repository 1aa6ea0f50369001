package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/neovratz/neovratz/internal/inference"
	nvopenai "github.com/neovratz/neovratz/internal/openai"
)

// ImageRequest asks for images.
type ImageRequest struct {
	Model          string
	Prompt         string
	NegativePrompt string
	N              int     // 0: one
	Size           string  // WIDTHxHEIGHT; "": the server's default
	Steps          int     // 0: the engine's default
	CFGScale       float64 // 0: the engine's default
	Seed           *int64  // nil: a random seed
	Sampler        string
}

// ImageProgress reports the diffusion steps of a generation under way.
type ImageProgress struct {
	Image, Images int // which image (from 0) of how many
	Step, Steps   int
}

// ImageResult is the generated images, as PNG files.
type ImageResult struct {
	Images [][]byte
	// JobID is the job that made them; "" when the server's jobs API was not available to
	// this key and the images came from the plain images API, without progress.
	JobID string
}

// GenerateImage generates images, reporting each diffusion step to onProgress. It submits an
// async job and follows the job's events, which carry the progress; when the API key may not use
// the jobs API it falls back to the OpenAI images API, which reports no progress. If ctx ends
// first, the job is canceled on the server.
func (c *Client) GenerateImage(ctx context.Context, req ImageRequest, onProgress func(ImageProgress)) (ImageResult, error) {
	input := nvopenai.ImageRequest{Model: req.Model, Prompt: req.Prompt, NegativePrompt: req.NegativePrompt,
		Size: req.Size, ResponseFormat: "b64_json", Sampler: req.Sampler, Seed: req.Seed}
	if req.N > 0 {
		input.N = &req.N
	}
	if req.Steps > 0 {
		input.Steps = &req.Steps
	}
	if req.CFGScale > 0 {
		input.CFGScale = &req.CFGScale
	}
	in, err := json.Marshal(input)
	if err != nil {
		return ImageResult{}, err
	}
	body, _ := json.Marshal(map[string]any{"kind": "image", "model": req.Model, "input": json.RawMessage(in)})
	var created struct {
		ID string `json:"id"`
	}
	err = c.doJSON(ctx, http.MethodPost, "/v1/jobs", body, &created)
	var apiErr *Error
	if errors.As(err, &apiErr) && (apiErr.Code == "insufficient_scope" || apiErr.Status == http.StatusNotFound && apiErr.Code == "") {
		// A key with only the inference scope, or a server without the jobs API.
		return c.generateImageSync(ctx, req)
	}
	if err != nil {
		return ImageResult{}, err
	}
	n := max(req.N, 1)
	res, err := c.followImageJob(ctx, created.ID, n, onProgress)
	if err != nil && ctx.Err() != nil {
		c.cancelJob(created.ID)
		return ImageResult{}, ctx.Err()
	}
	return res, err
}

// jobEnd is the last event of a job's stream: the finished job.
type jobEnd struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Result *nvopenai.ImagesResponse `json:"result"`
}

// followImageJob reads the job's events until its final "job" event, resuming the stream with
// Last-Event-ID when the connection drops.
func (c *Client) followImageJob(ctx context.Context, id string, n int, onProgress func(ImageProgress)) (ImageResult, error) {
	last := ""
	var streamErr error
	for try := 0; try < 6; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ImageResult{}, ctx.Err()
			case <-time.After(time.Duration(try) * 250 * time.Millisecond):
			}
		}
		end, err := c.readJobEvents(ctx, id, &last, func(p inference.ImageProgress) {
			if onProgress != nil {
				onProgress(ImageProgress{Image: p.Index, Images: n, Step: p.Step, Steps: p.Steps})
			}
		})
		if err != nil {
			var apiErr *Error
			if errors.As(err, &apiErr) || ctx.Err() != nil {
				return ImageResult{}, err
			}
			streamErr = err // the connection dropped: resume after the last event seen
			continue
		}
		if end == nil {
			streamErr = errors.New("the event stream ended before the job did")
			continue
		}
		return decodeImageJob(end)
	}
	return ImageResult{}, fmt.Errorf("follow job %s: %w", id, streamErr)
}

// readJobEvents reads one connection's worth of a job's events. It returns the finished job, or
// nil when the stream ended without it.
func (c *Client) readJobEvents(ctx context.Context, id string, last *string, progress func(inference.ImageProgress)) (*jobEnd, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/jobs/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.convert(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	events := newSSEReader(resp.Body)
	for {
		ev, err := events.next()
		if err != nil {
			return nil, err // io.EOF included: the caller resumes
		}
		if ev.id != "" {
			*last = ev.id
		}
		switch ev.typ {
		case "progress":
			var p inference.ImageProgress
			if json.Unmarshal(ev.data, &p) == nil {
				progress(p)
			}
		case "job":
			var end jobEnd
			if err := json.Unmarshal(ev.data, &end); err != nil {
				return nil, fmt.Errorf("job %s: bad final event: %w", id, err)
			}
			return &end, nil
		case "", "message":
			if bytes.Contains(ev.data, []byte(`"error"`)) { // an error inside the stream
				e := parseError(0, ev.data)
				return nil, e
			}
		}
	}
}

func decodeImageJob(end *jobEnd) (ImageResult, error) {
	if end.Status != "succeeded" {
		e := &Error{Message: "the job " + end.Status}
		if end.Error != nil {
			e.Code, e.Message = end.Error.Code, end.Error.Message
		}
		return ImageResult{}, e
	}
	if end.Result == nil {
		return ImageResult{}, fmt.Errorf("job %s succeeded without images", end.ID)
	}
	res := ImageResult{JobID: end.ID}
	for i, img := range end.Result.Data {
		png, err := base64.StdEncoding.DecodeString(img.B64JSON)
		if err != nil {
			return ImageResult{}, fmt.Errorf("job %s: image %d: %w", end.ID, i, err)
		}
		res.Images = append(res.Images, png)
	}
	return res, nil
}

// cancelJob asks the server to stop a job the caller no longer waits for. It has its own short
// deadline, as the caller's context has already ended.
func (c *Client) cancelJob(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.doJSON(ctx, http.MethodDelete, "/v1/jobs/"+id, nil, nil)
}

// generateImageSync generates images through the OpenAI images API: no progress.
func (c *Client) generateImageSync(ctx context.Context, req ImageRequest) (ImageResult, error) {
	params := openai.ImageGenerateParams{Model: req.Model, Prompt: req.Prompt,
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON}
	if req.N > 0 {
		params.N = openai.Int(int64(req.N))
	}
	var opts []option.RequestOption
	// neovratz's extensions, and sizes the OpenAI client's list does not name.
	if req.Size != "" {
		opts = append(opts, option.WithJSONSet("size", req.Size))
	}
	if req.NegativePrompt != "" {
		opts = append(opts, option.WithJSONSet("negative_prompt", req.NegativePrompt))
	}
	if req.Steps > 0 {
		opts = append(opts, option.WithJSONSet("steps", req.Steps))
	}
	if req.CFGScale > 0 {
		opts = append(opts, option.WithJSONSet("cfg_scale", req.CFGScale))
	}
	if req.Seed != nil {
		opts = append(opts, option.WithJSONSet("seed", *req.Seed))
	}
	if req.Sampler != "" {
		opts = append(opts, option.WithJSONSet("sampler", req.Sampler))
	}
	resp, err := c.images.Generate(ctx, params, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return ImageResult{}, ctx.Err()
		}
		return ImageResult{}, c.convert(err)
	}
	var res ImageResult
	for i, img := range resp.Data {
		png, err := base64.StdEncoding.DecodeString(img.B64JSON)
		if err != nil {
			return ImageResult{}, fmt.Errorf("image %d: %w", i, err)
		}
		res.Images = append(res.Images, png)
	}
	return res, nil
}

// newRequest makes a request to path on the server, with the API key.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	return req, nil
}

// doJSON sends a JSON request and decodes a JSON answer into out (when not nil).
func (c *Client) doJSON(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.convert(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := responseError(resp)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			e.Code = "" // not the API answering (a mux 404, a proxy)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}
