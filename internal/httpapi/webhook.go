package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/outbox"
)

// WebhookConfig tunes what the API does when an async job ends: webhook deliveries, and the
// token charges of keys with a tokens-per-minute limit. Zero values take the defaults.
type WebhookConfig struct {
	Workers  int           // jobs watched and deliveries sent at once by one replica; default 64
	Attempts int           // tries per delivery; default 5
	Timeout  time.Duration // per try; default 10s
	// Backoff is the wait before try attempt+1; default 1s, 2s, 4s … capped at a minute.
	Backoff func(attempt int) time.Duration
	// Poll is how often the outbox is asked for work that came due (retries, work a stopped
	// replica left); default 1s. Work this replica accepts starts at once.
	Poll time.Duration
	// Watch is how long one turn follows an unfinished job before putting it back behind the
	// others, so that long jobs cannot hold up the deliveries of short ones; default 30s.
	Watch time.Duration
	// AllowNetworks are networks webhooks may reach although they are not public (loopback,
	// private, link-local, …); default none.
	AllowNetworks []netip.Prefix
	// LookupNetIP resolves a webhook's host when the job is submitted; default the system
	// resolver's.
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Workers <= 0 {
		c.Workers = 64
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
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Watch <= 0 {
		c.Watch = 30 * time.Second
	}
	if c.LookupNetIP == nil {
		c.LookupNetIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
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

// jobEnd is what the API owes an async job when it ends, kept in the outbox under the job's id
// from before the job is enqueued until the work is done.
type jobEnd struct {
	Owner string `json:"owner"`          // the key that submitted the job
	Slot  bool   `json:"slot,omitempty"` // the job holds one of the key's concurrent-job slots
	TPM   int    `json:"tpm,omitempty"`  // the key's tokens per minute: charge the job's usage
	// The webhook, when there is one; Delivery is its Neovratz-Delivery, the same on every try.
	URL      string `json:"url,omitempty"`
	Secret   string `json:"secret,omitempty"`
	Delivery string `json:"delivery,omitempty"`
	// Settled: the slot is released and the tokens charged; only the delivery is left.
	Settled  bool   `json:"settled,omitempty"`
	Attempts int    `json:"attempts,omitempty"` // delivery tries that failed
	After    string `json:"after,omitempty"`    // the last event id read, where the next turn resumes
}

// Durations of an outbox entry's leases.
const (
	// submitGrace is how long an entry written before its job is enqueued waits for the
	// enqueue: a replica that stops in between leaves it to the others after that.
	submitGrace = time.Minute
	// maxLeaseMargin bounds what is added to a turn's longest run (watch plus one try) for the
	// entry's lease: as much as the turn again, at most this.
	maxLeaseMargin = 30 * time.Second
)

// webhooks does the end-of-job work of async jobs from the outbox, which every replica
// shares: a dispatcher claims the entries that are due, up to the number of idle workers, and
// runs each on a goroutine of its own. An entry is leased while it is worked on; a replica that
// stops hands its entries back (or, if it dies, leaves them until their leases pass), and any
// replica takes them up. Work done this way is done at least once.
type webhooks struct {
	s      *Server
	cfg    WebhookConfig
	store  outbox.Store
	policy targetPolicy
	client *http.Client
	idle   chan struct{} // one token per idle worker
	wake   chan struct{} // new work on this replica
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWebhooks(s *Server, cfg WebhookConfig, store outbox.Store) *webhooks {
	ctx, cancel := context.WithCancel(context.Background())
	p := targetPolicy{allow: cfg.AllowNetworks}
	h := &webhooks{s: s, cfg: cfg, store: store, policy: p, client: p.client(cfg.Timeout),
		idle: make(chan struct{}, cfg.Workers), wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	for range cfg.Workers {
		h.idle <- struct{}{}
	}
	h.wg.Add(1)
	go h.dispatch()
	return h
}

// lease is how long a claimed entry stays with its claimer: past it, the claimer is taken for
// dead and any replica may claim the entry (70s with the defaults).
func (h *webhooks) lease() time.Duration {
	turn := h.cfg.Watch + h.cfg.Timeout
	return turn + min(turn, maxLeaseMargin)
}

// poke makes the dispatcher look at the outbox now.
func (h *webhooks) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// ctxFor is a context for a store write that must happen even while the pool shuts down.
func (h *webhooks) ctxFor() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(h.ctx), 5*time.Second)
}

// put records e for job id before the job is enqueued; ready or drop follows.
func (h *webhooks) put(ctx context.Context, id string, e jobEnd) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return h.store.Put(ctx, outbox.Item{ID: id, Data: data}, h.s.cfg.Now().Add(submitGrace))
}

// ready makes job id's entry due now: its job is enqueued.
func (h *webhooks) ready(id string, e jobEnd) {
	h.update(id, e, h.s.cfg.Now())
	h.poke()
}

// drop removes job id's entry: its job was not enqueued, or was enqueued before (an idempotent
// resubmission), with the entry of that first submission.
func (h *webhooks) drop(id string) {
	ctx, cancel := h.ctxFor()
	defer cancel()
	if err := h.store.Delete(ctx, id); err != nil {
		h.s.log.Warn("webhook outbox: delete", "job", id, "err", err)
	}
}

func (h *webhooks) update(id string, e jobEnd, due time.Time) {
	data, err := json.Marshal(e)
	if err != nil {
		h.s.log.Error("webhook outbox: encode", "job", id, "err", err)
		return
	}
	ctx, cancel := h.ctxFor()
	defer cancel()
	if _, err := h.store.Update(ctx, outbox.Item{ID: id, Data: data}, due); err != nil {
		// The entry keeps its lease and comes back when it passes.
		h.s.log.Warn("webhook outbox: update", "job", id, "err", err)
	}
}

// close stops the pool. Entries being worked on go back to the outbox, due at once, for
// another replica (or this one, restarted) to finish.
func (h *webhooks) close() {
	h.cancel()
	h.wg.Wait()
}

func (h *webhooks) dispatch() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.idle:
		}
		n := 1
	more:
		for n < h.cfg.Workers {
			select {
			case <-h.idle:
				n++
			default:
				break more
			}
		}
		// The claim runs to its end even when the pool is shutting down: one cut off after the
		// store made it (a Redis script, an SQLite UPDATE … RETURNING) would leave its entries
		// leased to nobody for a whole lease. handle hands what it returns back at once.
		now := h.s.cfg.Now()
		cctx, cancel := h.ctxFor()
		items, err := h.store.Claim(cctx, now, n, now.Add(h.lease()))
		cancel()
		if err != nil && h.ctx.Err() == nil {
			h.s.log.Warn("webhook outbox: claim", "err", err)
		}
		for _, it := range items {
			h.wg.Add(1)
			go func() {
				defer func() {
					h.idle <- struct{}{}
					h.wg.Done()
				}()
				h.handle(it)
			}()
		}
		for range n - len(items) {
			h.idle <- struct{}{}
		}
		if len(items) == n && err == nil {
			continue // there may be more
		}
		select {
		case <-h.ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		}
	}
}

// handle takes one claimed entry a step on: it follows the job for up to a turn, then settles
// the job's end and tries its delivery.
func (h *webhooks) handle(it outbox.Item) {
	log := h.s.log.With("job", it.ID)
	var e jobEnd
	if err := json.Unmarshal(it.Data, &e); err != nil {
		log.Error("webhook outbox: undecodable entry dropped", "err", err)
		h.drop(it.ID)
		return
	}
	if e.URL != "" {
		log = log.With("webhook", redactURL(e.URL))
	}
	j, err := h.s.b.Get(h.ctx, it.ID)
	if errors.Is(err, broker.ErrNotFound) {
		// Never enqueued (its replica stopped between the entry and the enqueue), or gone
		// past retention: there is nothing to report.
		log.Warn("webhook outbox: job not found; entry dropped")
		h.s.metrics.webhooks.WithLabelValues("dropped").Inc()
		h.drop(it.ID)
		return
	}
	if err != nil {
		if h.ctx.Err() == nil {
			log.Warn("webhook outbox: read job", "err", err)
		}
		h.update(it.ID, e, h.s.cfg.Now().Add(h.cfg.Poll))
		return
	}
	if !j.Status.Terminal() {
		wctx, cancel := context.WithTimeout(h.ctx, h.cfg.Watch)
		_, after, err := h.s.follow(wctx, j.ID, e.After, nil, nil)
		cancel()
		e.After = after
		if err == nil {
			j, err = h.s.b.Get(h.ctx, it.ID)
		}
		if err != nil {
			// Not over within the turn, shutting down, or the broker failed: back in line.
			if h.ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("webhook outbox: follow job", "err", err)
			}
			h.update(it.ID, e, h.s.cfg.Now())
			return
		}
	}
	if !e.Settled {
		h.settle(j, &e)
		if e.URL == "" {
			h.drop(it.ID)
			return
		}
		if e.Slot || e.TPM > 0 {
			// Recorded before the delivery, so a retry elsewhere does not charge again.
			h.update(it.ID, e, h.s.cfg.Now().Add(h.lease()))
		}
	}
	h.deliver(log, it.ID, j, e)
}

// settle does what the API owes a job whose end it saw: counts it, frees its key's slot and
// charges its tokens.
func (h *webhooks) settle(j job.Job, e *jobEnd) {
	h.s.observeFinished(j)
	if e.Slot {
		h.s.releaseSlotOf(e.Owner, j.ID)
	}
	if e.TPM > 0 {
		h.s.chargeTokens(&auth.Key{ID: e.Owner, Limits: auth.Limits{TokensPerMinute: e.TPM}}, usageTokens(j))
	}
	e.Settled = true
}

// usageTokens returns the tokens a finished job used, from its result.
func usageTokens(j job.Job) int {
	if len(j.Result) == 0 {
		return 0
	}
	switch j.Kind {
	case job.KindChat, job.KindCompletion:
		var res inference.TextResult
		if json.Unmarshal(j.Result, &res) == nil {
			return res.Usage.TotalTokens
		}
	case job.KindEmbedding:
		var res inference.EmbeddingResult
		if json.Unmarshal(j.Result, &res) == nil {
			return res.Usage.TotalTokens
		}
	}
	return 0
}

// deliver makes one try of e's delivery and records the outcome: done, retry later, or given up.
func (h *webhooks) deliver(log *slog.Logger, id string, j job.Job, e jobEnd) {
	body, err := json.Marshal(struct {
		Type string  `json:"type"`
		Job  jobView `json:"job"`
	}{"job.finished", h.s.renderJob(j, h.s.cfg.PublicURL)})
	if err != nil {
		log.Error("webhook: encode", "err", err)
		h.drop(id)
		return
	}
	err = h.post(e, body)
	switch {
	case err == nil:
		log.Info("webhook delivered", "attempt", e.Attempts+1)
		h.s.metrics.webhooks.WithLabelValues("delivered").Inc()
		h.drop(id)
		return
	case h.ctx.Err() != nil:
		// Cut off by the shutdown, not the receiver's fault: another replica tries again.
		h.update(id, e, h.s.cfg.Now())
		return
	}
	e.Attempts++
	if e.Attempts >= h.cfg.Attempts {
		log.Warn("webhook failed; giving up", "attempts", e.Attempts, "err", err)
		h.s.metrics.webhooks.WithLabelValues("failed").Inc()
		h.drop(id)
		return
	}
	wait := h.cfg.Backoff(e.Attempts)
	log.LogAttrs(h.ctx, slog.LevelInfo, "webhook attempt failed; retrying", slog.Int("attempt", e.Attempts),
		slog.Duration("wait", wait), slog.String("err", err.Error()))
	h.update(id, e, h.s.cfg.Now().Add(wait))
	time.AfterFunc(wait, h.poke)
}

func (h *webhooks) post(e jobEnd, body []byte) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "neovratz-webhook")
	req.Header.Set(HeaderEvent, "job.finished")
	req.Header.Set(HeaderDelivery, e.Delivery)
	req.Header.Set(HeaderSignature, Sign([]byte(e.Secret), h.s.cfg.Now(), body))
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, whose query stays out of the logs
		}
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
