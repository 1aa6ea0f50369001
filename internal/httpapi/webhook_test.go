package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/outbox"
)

func TestWebhookTargetPolicy(t *testing.T) {
	p := targetPolicy{allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	tests := []struct {
		addr string
		want string // "" allowed, else the kind named in the refusal
	}{
		{"93.184.216.34", ""},
		{"2606:2800:220:1:248:1893:25c8:1946", ""},
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"10.1.2.3", ""}, // allowed network
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"255.255.255.255", "reserved"},
		{"64:ff9b::a9fe:a9fe", "link-local"}, // NAT64 for 169.254.169.254
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := p.check(netip.MustParseAddr(tt.addr))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("check = %v, want allowed", err)
			case tt.want != "" && (!errors.Is(err, errTargetRefused) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("check = %v, want a refusal naming %s", err, tt.want)
			}
		})
	}
}

// webhookJob is a chat job body whose webhook calls url.
func webhookJob(model, url, secret string) string {
	return `{"kind":"chat","input":{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]},` +
		`"webhook":{"url":"` + url + `","secret":"` + secret + `"}}`
}

const hookSecret = "whsec_0123456789abcdef"

// submitWebhookJob submits a chat job for model to the API at url with key token, its webhook
// pointing at recv, and returns the job's id.
func submitWebhookJob(t *testing.T, url, token, model string, recv *hookReceiver) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/jobs", strings.NewReader(webhookJob(model, recv.srv.URL+"/hook", hookSecret)))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	return decodeJob(t, string(body)).ID
}

// TestWebhookRefusesInternalTargets: without an allowed network, a webhook to a loopback,
// private, link-local, unspecified or multicast address is refused at submission, by address
// or by a name resolving to one.
func TestWebhookRefusesInternalTargets(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *Config) { c.Webhooks.AllowNetworks = nil })
	_, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}})
	for _, url := range []string{
		"http://127.0.0.1:9/hook",
		"http://localhost:9/hook",
		"http://[::1]/hook",
		"http://[::ffff:127.0.0.1]/hook",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/hook",
		"https://192.168.0.10/hook",
		"http://0.0.0.0:8080/",
		"http://224.0.0.1/",
		"ftp://example.com/hook",
		"file:///etc/passwd",
		"http:///nohost",
		"http://no-such-host.invalid/hook",
	} {
		resp, body := e.do(t, "POST", "/v1/jobs", token, webhookJob("text", url, hookSecret))
		if resp.StatusCode != 400 || errParam(t, body) != "webhook.url" {
			t.Errorf("%s: %d %s, want 400 with param webhook.url", url, resp.StatusCode, body)
		}
	}
}

// TestWebhookDialCheck: a name that resolved to a public address at submission but to a
// loopback one when the delivery connects (DNS rebinding) is refused at connect time. The
// submission's resolver is a fake — rebinding needs a DNS server this test cannot run — and
// the delivery resolves "localhost" for real.
func TestWebhookDialCheck(t *testing.T) {
	var called bool
	var mu sync.Mutex
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		called = true
		mu.Unlock()
	}))
	defer recv.Close()
	e := newEnv(t, "sqlite", func(c *Config) {
		c.Webhooks.AllowNetworks = nil
		c.Webhooks.Attempts = 2
		c.Webhooks.LookupNetIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		}
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(recv.URL, "http://"))
	resp, body := e.do(t, "POST", "/v1/jobs", e.admin, webhookJob("text", "http://localhost:"+port+"/hook", hookSecret))
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the delivery to be given up", func() bool { return strings.Contains(e.logs.String(), "webhook failed; giving up") })
	mu.Lock()
	defer mu.Unlock()
	if called {
		t.Error("the delivery reached a loopback receiver")
	}
	if !strings.Contains(e.logs.String(), "webhook target refused") {
		t.Errorf("logs do not name the refusal:\n%s", e.logs)
	}
}

// apiReplica is an API server on cfg that the test stops when it wants.
type apiReplica struct {
	api *Server
	srv *httptest.Server
}

func startReplica(t *testing.T, cfg Config) *apiReplica {
	t.Helper()
	cfg.Registry = prometheus.NewRegistry()
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &apiReplica{api: api, srv: httptest.NewServer(api.Handler())}
	t.Cleanup(r.stop)
	return r
}

func (r *apiReplica) stop() {
	if r.api == nil {
		return
	}
	r.srv.Close()
	r.api.Close()
	r.api = nil
}

// hookReceiver is a webhook receiver that fails every delivery while down.
type hookReceiver struct {
	srv *httptest.Server

	mu         sync.Mutex
	down       bool
	tries      int
	deliveries []string // Neovratz-Delivery of every try
	got        chan string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{down: true, got: make(chan string, 10)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries++
		h.deliveries = append(h.deliveries, r.Header.Get(HeaderDelivery))
		if h.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !validSignature(r.Header.Get(HeaderSignature), secret, body) {
			t.Errorf("bad signature %q", r.Header.Get(HeaderSignature))
		}
		h.got <- string(body)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tries
}

// TestWebhookSurvivesReplicaStop: a delivery a replica owed when it stopped — its receiver
// down, or its job still running — is made by another replica on the same outbox, with the
// same delivery id and a valid signature.
func TestWebhookSurvivesReplicaStop(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		// The env's own server keeps a private outbox, so only the replicas below see the
		// shared one.
		var shared outbox.Store
		e := newEnv(t, kind, func(c *Config) { shared, c.Outbox = c.Outbox, outbox.NewMemory() })
		cfg := e.cfg
		cfg.Outbox = shared
		cfg.Webhooks.Backoff = func(int) time.Duration { return 100 * time.Millisecond }
		cfg.Webhooks.Poll = 50 * time.Millisecond
		_, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}})

		submit := func(url, model string, recv *hookReceiver) string {
			t.Helper()
			return submitWebhookJob(t, url, token, model, recv)
		}
		check := func(recv *hookReceiver, id string) {
			t.Helper()
			select {
			case payload := <-recv.got:
				if !strings.Contains(payload, `"type":"job.finished"`) || !strings.Contains(payload, id) || !strings.Contains(payload, `"status":"succeeded"`) {
					t.Errorf("payload = %s", payload)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the second replica did not deliver")
			}
			recv.mu.Lock()
			defer recv.mu.Unlock()
			for _, d := range recv.deliveries {
				if d == "" || d != recv.deliveries[0] {
					t.Errorf("delivery ids across tries = %q, want one id", recv.deliveries)
				}
			}
		}

		t.Run("receiver down", func(t *testing.T) {
			recv := newHookReceiver(t, hookSecret)
			a := startReplica(t, cfg)
			id := submit(a.srv.URL, "text", recv)
			waitFor(t, "a failed try", func() bool { return recv.count() >= 1 })
			a.stop()
			tries := recv.count()
			recv.setDown(false)
			time.Sleep(300 * time.Millisecond) // past the backoff: nobody is left to retry
			if recv.count() != tries {
				t.Fatalf("a stopped replica kept delivering")
			}
			startReplica(t, cfg)
			check(recv, id)
		})

		t.Run("job running", func(t *testing.T) {
			recv := newHookReceiver(t, hookSecret)
			recv.setDown(false)
			a := startReplica(t, cfg)
			id := submit(a.srv.URL, "medium", recv) // 10 tokens at 30 ms
			waitStatus(t, e, id, job.StatusRunning)
			a.stop()
			waitStatus(t, e, id, job.StatusSucceeded)
			if n := recv.count(); n != 0 {
				t.Fatalf("%d deliveries before a replica was left", n)
			}
			startReplica(t, cfg)
			check(recv, id)
		})
	})
}

// failingStore is an outbox whose writes fail once its process has died: a replica that
// crashes can neither finish nor hand back what it holds. It remembers when what it last
// claimed or handed back becomes claimable by others (the test has one item), and runs each
// call under its lock, so that no call is halfway when the replica dies.
type failingStore struct {
	outbox.Store
	mu   sync.Mutex
	dead bool
	free time.Time // when the item is due for others, as of the last call
}

var errDead = errors.New("the replica died")

// kill ends the replica and returns when its item becomes claimable by another.
func (f *failingStore) kill() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = true
	return f.free
}

// leased reports how long the item stays with this replica from now.
func (f *failingStore) leased() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Until(f.free)
}

func (f *failingStore) Put(ctx context.Context, it outbox.Item, due time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return errDead
	}
	err := f.Store.Put(ctx, it, due)
	if err == nil {
		f.free = due
	}
	return err
}

func (f *failingStore) Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]outbox.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return nil, errDead
	}
	items, err := f.Store.Claim(ctx, now, n, until)
	if len(items) > 0 {
		f.free = until
	}
	return items, err
}

func (f *failingStore) Update(ctx context.Context, it outbox.Item, due time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return false, errDead
	}
	ok, err := f.Store.Update(ctx, it, due)
	if ok && err == nil {
		f.free = due
	}
	return ok, err
}

func (f *failingStore) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return errDead
	}
	return f.Store.Delete(ctx, id)
}

// TestWebhookAfterReplicaDies: a replica that dies while it follows a job leaves the entry
// leased; once the lease has passed another replica delivers.
func TestWebhookAfterReplicaDies(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		var shared outbox.Store
		e := newEnv(t, kind, func(c *Config) { shared, c.Outbox = c.Outbox, outbox.NewMemory() })
		cfg := e.cfg
		cfg.Webhooks.Poll = 50 * time.Millisecond
		cfg.Webhooks.Watch = 200 * time.Millisecond
		cfg.Webhooks.Timeout = 500 * time.Millisecond // a lease of 1.4s
		dying := &failingStore{Store: shared}
		cfg.Outbox = dying
		a := startReplica(t, cfg)
		recv := newHookReceiver(t, hookSecret)
		recv.setDown(false)

		id := submitWebhookJob(t, a.srv.URL, e.admin, "medium", recv)
		waitStatus(t, e, id, job.StatusRunning)
		// Die while the entry is leased to this replica for a good while yet (it claims it
		// within a poll, and claims it again after every turn of watching).
		waitFor(t, "replica A to hold the entry's lease", func() bool { return dying.leased() > time.Second })
		free := dying.kill()
		a.stop()
		waitStatus(t, e, id, job.StatusSucceeded)

		cfg.Outbox = shared
		startReplica(t, cfg)
		select {
		case <-recv.got:
			if early := time.Until(free); early > 0 {
				t.Errorf("delivered %s before the dead replica's lease ended", early)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery after the lease passed")
		}
		if n := recv.count(); n != 1 {
			t.Errorf("%d deliveries, want 1", n)
		}
	})
}

// TestAsyncJobsChargeTokens: an async job's tokens count against its key's tokens-per-minute
// limit once it ends, whether or not anyone reads it.
func TestAsyncJobsChargeTokens(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		used := expectedChat(t, "hi", 0, 0).Usage.TotalTokens
		// An allowance of exactly one job's tokens: once that job is charged, none is left for
		// about a minute.
		k, token := e.key(t, auth.Spec{Scopes: []auth.Scope{auth.ScopeJobs}, Limits: auth.Limits{TokensPerMinute: used}})
		resp, body := e.do(t, "POST", "/v1/jobs", token, chatJob)
		if resp.StatusCode != 202 {
			t.Fatalf("submit: %d %s", resp.StatusCode, body)
		}
		waitFor(t, "the job's tokens to be charged", func() bool {
			d, err := e.cfg.Limiter.Take(context.Background(), "tok:"+k.ID, used, 0)
			return err == nil && d.Remaining == 0
		})
		resp, body = e.do(t, "POST", "/v1/jobs", token, chatJob)
		if resp.StatusCode != 429 || errCode(t, body) != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("submission after the allowance was spent: %d %s, want 429 rate_limit_exceeded", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Ratelimit-Limit-Tokens"); got != fmt.Sprint(used) {
			t.Errorf("x-ratelimit-limit-tokens = %q, want %d", got, used)
		}
	})
}

// stallingStore, once armed, holds every claim that took entries until released, the claim
// already made in the store, as a Redis script or an SQLite statement completes whatever the
// caller's context; it then reports the context's error if the caller gave up meanwhile (the
// caller never sees the entries).
type stallingStore struct {
	outbox.Store
	armed   atomic.Bool
	stalled chan struct{} // a claim that took entries is being held
	release chan struct{}
}

func (s *stallingStore) Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]outbox.Item, error) {
	items, err := s.Store.Claim(context.WithoutCancel(ctx), now, n, until)
	if len(items) > 0 && s.armed.Load() {
		select {
		case s.stalled <- struct{}{}:
		default:
		}
		<-s.release
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return items, err
}

// TestWebhookClaimDuringStop: a replica that stops while a claim of the outbox is in flight
// hands the claimed entries back instead of leaving them leased to nobody (70 s with the
// default settings), so another replica delivers at once.
func TestWebhookClaimDuringStop(t *testing.T) {
	brokers(t, func(t *testing.T, kind string) {
		var shared outbox.Store
		e := newEnv(t, kind, func(c *Config) { shared, c.Outbox = c.Outbox, outbox.NewMemory() })
		cfg := e.cfg
		cfg.Webhooks.Poll = 20 * time.Millisecond
		stalling := &stallingStore{Store: shared, stalled: make(chan struct{}, 1), release: make(chan struct{})}
		cfg.Outbox = stalling
		a := startReplica(t, cfg)
		recv := newHookReceiver(t, hookSecret)
		recv.setDown(false)

		stalling.armed.Store(true) // from now on a's claims wait
		submitWebhookJob(t, a.srv.URL, e.admin, "text", recv)
		select {
		case <-stalling.stalled: // a has claimed the entry, and waits for the claim's answer
		case <-time.After(5 * time.Second):
			t.Fatal("replica a did not claim the entry")
		}
		stopped := make(chan struct{})
		go func() { a.stop(); close(stopped) }()
		time.Sleep(200 * time.Millisecond) // a's stop cancels its pool, then waits for the claim
		close(stalling.release)
		<-stopped

		cfg.Outbox = shared
		startReplica(t, cfg)
		select {
		case <-recv.got:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery: the entry stayed with the replica that stopped mid-claim")
		}
	})
}
