package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/openai"
)

// listModels serves GET /v1/models: the models live workers serve that the key may use.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.models.list(r.Context())
	if err != nil {
		return errInternal(fmt.Errorf("list workers: %w", err))
	}
	k := keyOf(r)
	out := openai.ModelList{Object: "list", Data: []openai.Model{}}
	for _, m := range ms {
		if k.AllowsModel(m.ID) {
			out.Data = append(out.Data, m)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getModel serves GET /v1/models/{id}.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ms, err := s.models.list(r.Context())
	if err != nil {
		return errInternal(fmt.Errorf("list workers: %w", err))
	}
	if keyOf(r).AllowsModel(id) {
		for _, m := range ms {
			if m.ID == id {
				writeJSON(w, http.StatusOK, m)
				return nil
			}
		}
	}
	return errNotFound("model_not_found", "The model %q does not exist or no worker serves it.", id)
}

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req openai.ChatCompletionRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	tr, err := inference.FromChat(&req)
	if err != nil {
		return err
	}
	return s.text(w, r, job.KindChat, body, tr, req.Stream, req.StreamOptions, func(tc *textCall) { tc.logprobs = req.Logprobs })
}

// completions serves POST /v1/completions.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req openai.CompletionRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	tr, err := inference.FromCompletion(&req)
	if err != nil {
		return err
	}
	return s.text(w, r, job.KindCompletion, body, tr, req.Stream, req.StreamOptions, func(tc *textCall) {
		tc.logprobs = req.Logprobs != nil
		if req.Echo {
			tc.echo = tr.Prompt
		}
	})
}

// text runs a chat or completion call and answers it, streamed or whole.
func (s *Server) text(w http.ResponseWriter, r *http.Request, kind job.Kind, body []byte, tr inference.TextRequest,
	stream bool, so *openai.StreamOptions, setup func(*textCall)) error {
	sub := submission{kind: kind, model: tr.Model, input: body, priority: job.PriorityNormal}
	tc := &textCall{chat: kind == job.KindChat, n: tr.N, sent: make([]int, tr.N), includeUsage: so != nil && so.IncludeUsage}
	setup(tc)
	// The response's id and creation time come from the job, known once it is enqueued.
	sub.onEnqueued = func(j job.Job) {
		base := newTextCall(kind == job.KindChat, j, tr.N)
		tc.id, tc.model, tc.created = base.id, base.model, base.created
	}
	fin, sse, err := s.call(w, r, sub, tc, stream)
	if err != nil {
		return err
	}
	var res inference.TextResult
	if err := json.Unmarshal(fin.Result, &res); err != nil {
		e := errInternal(fmt.Errorf("job %s: decode text result: %w", fin.ID, err))
		if sse != nil {
			_ = sse.errorEvent(e)
		}
		return e
	}
	k := keyOf(r)
	s.chargeTokens(k, res.Usage.TotalTokens)
	s.metrics.promptTokens.WithLabelValues(fin.Model).Add(float64(res.Usage.PromptTokens))
	s.metrics.generatedTokens.WithLabelValues(fin.Model).Add(float64(res.Usage.CompletionTokens))
	if sse == nil {
		writeJSON(w, http.StatusOK, tc.response(res))
		return nil
	}
	for _, c := range tc.finishChunks(res) {
		if err := sse.data(c); err != nil {
			return errClientGone
		}
	}
	if err := sse.done(); err != nil {
		return errClientGone
	}
	return nil
}

// embeddings serves POST /v1/embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req openai.EmbeddingRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	if _, err := inference.FromEmbedding(&req); err != nil {
		return err
	}
	if err := checkDimensions(req.Dimensions, "dimensions"); err != nil {
		return err
	}
	fin, _, err := s.call(w, r, submission{kind: job.KindEmbedding, model: req.Model, input: body, priority: job.PriorityNormal}, nil, false)
	if err != nil {
		return err
	}
	var res inference.EmbeddingResult
	if err := json.Unmarshal(fin.Result, &res); err != nil {
		return errInternal(fmt.Errorf("job %s: decode embedding result: %w", fin.ID, err))
	}
	// The model did the work, so its tokens count even when the dimensions turn out too many:
	// the registry does not know a model's embedding size before its first answer.
	s.chargeTokens(keyOf(r), res.Usage.TotalTokens)
	s.metrics.promptTokens.WithLabelValues(fin.Model).Add(float64(res.Usage.PromptTokens))
	if req.Dimensions != nil {
		if err := shortenEmbeddings(&res, *req.Dimensions, fin.Model, "dimensions"); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, embeddingResponse(fin.Model, req.EncodingFormat, res))
	return nil
}

// imageGenerations serves POST /v1/images/generations.
func (s *Server) imageGenerations(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req openai.ImageRequest
	if err := inference.Decode(body, &req); err != nil {
		return err
	}
	ir, err := inference.FromImage(&req)
	if err != nil {
		return err
	}
	fin, _, err := s.call(w, r, submission{kind: job.KindImage, model: req.Model, input: body, priority: job.PriorityNormal}, nil, false)
	if err != nil {
		return err
	}
	var res inference.ImageResult
	if err := json.Unmarshal(fin.Result, &res); err != nil {
		return errInternal(fmt.Errorf("job %s: decode image result: %w", fin.ID, err))
	}
	s.metrics.images.WithLabelValues(fin.Model).Add(float64(len(res.Images)))
	if ir.Steps > 0 {
		s.metrics.imageSteps.WithLabelValues(fin.Model).Add(float64(ir.Steps * len(res.Images)))
	}
	var urlFor func(int) string
	if req.ResponseFormat == "url" {
		base := s.baseURL(r)
		exp := s.cfg.Now().Add(imageURLLifetime).Unix()
		urlFor = func(i int) string { return base + s.imagePath(fin.ID, i, exp) }
	}
	writeJSON(w, http.StatusOK, imagesResponse(fin.CreatedAt.Unix(), res, urlFor))
	return nil
}

// imageURLLifetime is how long an image URL works, as OpenAI's do (an hour); the image itself
// lives as long as its job is retained.
const imageURLLifetime = time.Hour

// imagePath is the signed path of image i of job id, valid until exp (unix seconds). The
// signature makes the URL work without an API key, as clients fetch OpenAI's image URLs.
func (s *Server) imagePath(id string, i int, exp int64) string {
	return fmt.Sprintf("/v1/images/%s/%d.png?exp=%d&sig=%s", id, i, exp, s.imageSig(id, i, exp))
}

func (s *Server) imageSig(id string, i int, exp int64) string {
	m := hmac.New(sha256.New, s.cfg.URLKey)
	fmt.Fprintf(m, "image\x00%s\x00%d\x00%d", id, i, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// baseURL is where clients reach this API: PublicURL, or the request's own scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// imageFile serves GET /v1/images/{job}/{file}: one PNG of a finished image job, to holders of
// a signed URL.
func (s *Server) imageFile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("job")
	name, ok := strings.CutSuffix(r.PathValue("file"), ".png")
	i, err := strconv.Atoi(name)
	notFound := errNotFound("image_not_found", "No such image, or its URL has expired.")
	if !ok || err != nil || i < 0 || i >= inference.MaxN {
		return notFound
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || s.cfg.Now().Unix() > exp || !hmac.Equal([]byte(q.Get("sig")), []byte(s.imageSig(id, i, exp))) {
		return notFound
	}
	j, err := s.b.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if j.Kind != job.KindImage || j.Status != job.StatusSucceeded {
		return notFound
	}
	var res inference.ImageResult
	if err := json.Unmarshal(j.Result, &res); err != nil {
		return errInternal(fmt.Errorf("job %s: decode image result: %w", j.ID, err))
	}
	if i >= len(res.Images) {
		return notFound
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", strconv.Itoa(len(res.Images[i].PNG)))
	h.Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(res.Images[i].PNG)
	return nil
}
