package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/auth"
	"github.com/neovratz/neovratz/internal/broker"
)

// anonymous is the key every request gets when authentication is off (local development).
var anonymous = auth.Key{ID: "anonymous", Name: "anonymous (auth disabled)", Scopes: auth.Scopes}

// authenticate checks the request's key, its scope and its requests-per-minute allowance, and
// records the key for the handler.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, scope auth.Scope) error {
	info := infoFrom(r.Context())
	if s.cfg.AuthDisabled {
		k := anonymous
		info.key = &k
		return nil
	}
	k, err := s.cfg.Keys.Authenticate(r.Context(), bearer(r))
	switch {
	case errors.Is(err, auth.ErrNoKey):
		return errUnauthorized("missing_api_key", "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer nvk_…'.")
	case errors.Is(err, auth.ErrMalformed):
		return errUnauthorized("invalid_api_key", "The API key is malformed: keys look like nvk_<id>_<secret>.")
	case errors.Is(err, auth.ErrWrongKey):
		return errUnauthorized("invalid_api_key", "Incorrect API key provided.")
	case errors.Is(err, auth.ErrRevoked):
		return errUnauthorized("api_key_revoked", "This API key has been revoked.")
	case errors.Is(err, auth.ErrExpired):
		return errUnauthorized("api_key_expired", "This API key has expired.")
	case err != nil:
		e := errUnavailable("auth_unavailable", "API keys cannot be checked right now; retry shortly.", time.Second)
		e.Cause = err
		return e
	}
	if !k.HasScope(scope) {
		return errForbidden("insufficient_scope", "This API key lacks the %s scope.", scope)
	}
	info.key = &k
	if rpm := k.Limits.RequestsPerMinute; rpm > 0 {
		d, err := s.cfg.Limiter.Take(r.Context(), "req:"+k.ID, rpm, 1)
		if err != nil {
			return errInternal(err)
		}
		setRateHeaders(w.Header(), "requests", d)
		if !d.Allowed {
			s.metrics.rejections.WithLabelValues("requests_per_minute").Inc()
			return errRateLimited("rate_limit_exceeded", fmt.Sprintf("Rate limit reached: %d requests per minute.", rpm), d.RetryAfter)
		}
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// setRateHeaders writes OpenAI's x-ratelimit-* headers for what ("requests" or "tokens").
func setRateHeaders(h http.Header, what string, d auth.Decision) {
	h.Set("X-Ratelimit-Limit-"+what, strconv.Itoa(d.Limit))
	h.Set("X-Ratelimit-Remaining-"+what, strconv.Itoa(d.Remaining))
	h.Set("X-Ratelimit-Reset-"+what, d.ResetAfter.Round(time.Millisecond).String())
}

// checkTokens refuses a key whose tokens-per-minute allowance is used up. Tokens are charged
// when a call's usage is known (chargeTokens), so this only checks that some are left.
func (s *Server) checkTokens(ctx context.Context, w http.ResponseWriter, k *auth.Key) error {
	tpm := k.Limits.TokensPerMinute
	if tpm <= 0 {
		return nil
	}
	d, err := s.cfg.Limiter.Take(ctx, "tok:"+k.ID, tpm, 0)
	if err != nil {
		return errInternal(err)
	}
	setRateHeaders(w.Header(), "tokens", d)
	if !d.Allowed {
		s.metrics.rejections.WithLabelValues("tokens_per_minute").Inc()
		return errRateLimited("rate_limit_exceeded", fmt.Sprintf("Rate limit reached: %d tokens per minute.", tpm), d.RetryAfter)
	}
	return nil
}

// chargeTokens counts a finished call's tokens against its key. Synchronous calls charge as
// they answer; async jobs when the end-of-job pool sees them end (webhook.go).
func (s *Server) chargeTokens(k *auth.Key, n int) {
	if k.Limits.TokensPerMinute <= 0 || n <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Limiter.Charge(ctx, "tok:"+k.ID, k.Limits.TokensPerMinute, n); err != nil {
		s.log.Warn("charge tokens", "key", k.ID, "err", err)
	}
}

// acquireSlot takes one of the key's concurrent-job slots for jobID. When the key seems full it
// first frees the slots of jobs that have ended (a replica that died, or an async job whose end
// nobody watched, leaves them behind), then tries again.
func (s *Server) acquireSlot(ctx context.Context, k *auth.Key, jobID string, ttl time.Duration) error {
	limit := k.Limits.ConcurrentJobs
	if limit <= 0 {
		return nil
	}
	bucket := "jobs:" + k.ID
	for try := 0; try < 2; try++ {
		ok, err := s.cfg.Slots.Acquire(ctx, bucket, jobID, limit, ttl)
		if err != nil {
			return errInternal(err)
		}
		if ok {
			return nil
		}
		if try == 0 {
			if err := s.freeEndedSlots(ctx, bucket); err != nil {
				return errInternal(err)
			}
		}
	}
	s.metrics.rejections.WithLabelValues("concurrent_jobs").Inc()
	return errRateLimited("concurrency_limit_exceeded", fmt.Sprintf("This API key may run at most %d jobs at once.", limit), time.Second)
}

func (s *Server) freeEndedSlots(ctx context.Context, bucket string) error {
	held, err := s.cfg.Slots.Held(ctx, bucket)
	if err != nil {
		return err
	}
	for _, id := range held {
		j, err := s.b.Get(ctx, id)
		if err != nil && !errors.Is(err, broker.ErrNotFound) {
			return err
		}
		if err != nil || j.Status.Terminal() {
			if err := s.cfg.Slots.Release(ctx, bucket, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseSlot gives a job's slot back.
func (s *Server) releaseSlot(k *auth.Key, jobID string) {
	if k.Limits.ConcurrentJobs <= 0 {
		return
	}
	s.releaseSlotOf(k.ID, jobID)
}

// releaseSlotOf gives back the slot job jobID holds of key keyID's concurrent jobs.
func (s *Server) releaseSlotOf(keyID, jobID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Slots.Release(ctx, "jobs:"+keyID, jobID); err != nil {
		s.log.Warn("release job slot", "key", keyID, "job", jobID, "err", err)
	}
}
