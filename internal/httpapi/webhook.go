package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
)

// WebhookConfig tunes webhook delivery. Zero values take the defaults.
type WebhookConfig struct {
	Workers  int           // deliveries watched and sent at once; default 64
	Queue    int           // deliveries waiting for a worker beyond those; default 1024
	Attempts int           // tries per delivery; default 5
	Timeout  time.Duration // per try; default 10s
	// Backoff is the wait before try attempt+1; default 1s, 2s, 4s … capped at a minute.
	Backoff func(attempt int) time.Duration
	Client  *http.Client // default: a client with Timeout
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Backoff == nil {
		c.Backoff = func(attempt int) time.Duration { return min(time.Second<<min(attempt-1, 6), time.Minute) }
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	return c
}

// Webhook headers. The signature is Stripe's scheme: t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" under the job's webhook secret>; the receiver recomputes it and checks t is recent.
const (
	HeaderSignature = "Neovratz-Signature"
	HeaderEvent     = "Neovratz-Event"
	HeaderDelivery  = "Neovratz-Delivery"
)

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// hookTask is one job whose end is to be reported.
type hookTask struct {
	jobID, url, secret string
	key                auth.Key
}

// webhooks is the delivery pool: a fixed number of goroutines, owned by the Server, each
// following one job's event log to its end and then delivering, with retries. Capacity is
// reserved before a job is enqueued, so a full pool refuses the request instead of dropping
// the delivery. Deliveries belong to the replica that accepted the job: one that stops drops
// its pending deliveries (they are logged).
type webhooks struct {
	s      *Server
	cfg    WebhookConfig
	cap    chan struct{} // one token per accepted, unfinished delivery
	tasks  chan hookTask
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWebhooks(s *Server, cfg WebhookConfig) *webhooks {
	ctx, cancel := context.WithCancel(context.Background())
	h := &webhooks{s: s, cfg: cfg, cap: make(chan struct{}, cfg.Workers+cfg.Queue),
		tasks: make(chan hookTask, cfg.Workers+cfg.Queue), ctx: ctx, cancel: cancel}
	for range cfg.Workers {
		h.wg.Add(1)
		go h.run()
	}
	return h
}

// reserve takes room for one delivery, or reports that there is none.
func (h *webhooks) reserve() bool {
	select {
	case h.cap <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *webhooks) unreserve() { <-h.cap }

// add queues a delivery for which reserve succeeded; it never blocks.
func (h *webhooks) add(t hookTask) { h.tasks <- t }

func (h *webhooks) close() {
	h.cancel()
	h.wg.Wait()
	for {
		select {
		case t := <-h.tasks:
			h.s.log.Warn("webhook dropped at shutdown", "job", t.jobID)
			h.s.metrics.webhooks.WithLabelValues("dropped").Inc()
		default:
			return
		}
	}
}

func (h *webhooks) run() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case t := <-h.tasks:
			h.handle(t)
			h.unreserve()
		}
	}
}

func (h *webhooks) handle(t hookTask) {
	log := h.s.log.With("job", t.jobID, "webhook", redactURL(t.url))
	_, _, err := h.s.follow(h.ctx, t.jobID, "", nil, nil)
	if err != nil {
		if h.ctx.Err() == nil {
			log.Warn("webhook: cannot follow job", "err", err)
		}
		h.s.metrics.webhooks.WithLabelValues("dropped").Inc()
		return
	}
	j, err := h.s.b.Get(h.ctx, t.jobID)
	if err != nil {
		log.Warn("webhook: cannot read finished job", "err", err)
		h.s.metrics.webhooks.WithLabelValues("dropped").Inc()
		return
	}
	h.s.observeFinished(j)
	h.s.releaseSlot(&t.key, j.ID)
	body, err := json.Marshal(struct {
		Type string  `json:"type"`
		Job  jobView `json:"job"`
	}{"job.finished", h.s.renderJob(j, h.s.cfg.PublicURL)})
	if err != nil {
		log.Error("webhook: encode", "err", err)
		return
	}
	delivery := hex.EncodeToString(randomBytes(8))
	for attempt := 1; ; attempt++ {
		err := h.post(t, delivery, body)
		if err == nil {
			log.Info("webhook delivered", "attempt", attempt)
			h.s.metrics.webhooks.WithLabelValues("delivered").Inc()
			return
		}
		if attempt >= h.cfg.Attempts {
			log.Warn("webhook failed; giving up", "attempts", attempt, "err", err)
			h.s.metrics.webhooks.WithLabelValues("failed").Inc()
			return
		}
		log.LogAttrs(h.ctx, slog.LevelInfo, "webhook attempt failed; retrying", slog.Int("attempt", attempt), slog.String("err", err.Error()))
		select {
		case <-h.ctx.Done():
			h.s.metrics.webhooks.WithLabelValues("dropped").Inc()
			return
		case <-time.After(h.cfg.Backoff(attempt)):
		}
	}
}

func (h *webhooks) post(t hookTask, delivery string, body []byte) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "neovratz-webhook")
	req.Header.Set(HeaderEvent, "job.finished")
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderSignature, Sign([]byte(t.secret), h.s.cfg.Now(), body))
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// redactURL keeps a webhook URL's query (which may hold a token) out of the logs.
func redactURL(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i] + "?…"
		}
	}
	return u
}
