// Package auth holds neovratz's API keys and the limits they carry: the key format and its
// hashing, the stores keys live in (SQLite for the embedded server, Redis for replicated API
// services), authentication, and the rate limiters and concurrency slots that make a key's
// limits hold across API replicas.
//
// A key reads nvk_<id>_<secret>. Only the SHA-256 of the secret is stored; the id finds the key
// and the hash is compared in constant time. Keys are never logged, only their ids.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Scope is one kind of access a key grants.
type Scope string

// The scopes.
const (
	ScopeInference Scope = "inference" // OpenAI-compatible endpoints
	ScopeJobs      Scope = "jobs"      // async jobs
	ScopeAdmin     Scope = "admin"     // keys, workers, queues; implies metrics
	ScopeWorker    Scope = "worker"    // workers pulling jobs over HTTP
	// ScopeMetrics reads the API's /metrics and the workers' service discovery: what
	// Prometheus needs, and nothing that can change the service or run a job.
	ScopeMetrics Scope = "metrics"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeInference, ScopeJobs, ScopeAdmin, ScopeWorker, ScopeMetrics}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(Scopes, s) }

// Limits are a key's allowances; zero means unlimited.
type Limits struct {
	RequestsPerMinute int `json:"requests_per_minute,omitempty"`
	TokensPerMinute   int `json:"tokens_per_minute,omitempty"`
	ConcurrentJobs    int `json:"concurrent_jobs,omitempty"`
}

// Key is an API key as stored: everything but its secret.
type Key struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	// Models the key may use; empty means every model.
	Models    []string  `json:"models,omitempty"`
	Limits    Limits    `json:"limits"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Hash is the SHA-256 of the secret. It is kept out of JSON so a key can be shown safely.
	Hash []byte `json:"-"`
}

// HasScope reports whether k grants s. The admin scope grants metrics too: whoever may
// administer the service may read its figures.
func (k *Key) HasScope(s Scope) bool {
	return slices.Contains(k.Scopes, s) || (s == ScopeMetrics && slices.Contains(k.Scopes, ScopeAdmin))
}

// AllowsModel reports whether k may use model.
func (k *Key) AllowsModel(model string) bool {
	return len(k.Models) == 0 || slices.Contains(k.Models, model)
}

// Spec is what a new key is made from.
type Spec struct {
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	Models    []string  `json:"models,omitempty"`
	Limits    Limits    `json:"limits"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ErrInvalidSpec matches every error of Spec.Validate.
var ErrInvalidSpec = errors.New("invalid key spec")

// SpecError says what is wrong with a Spec; its text is safe to show the client.
type SpecError struct{ Field, Reason string }

// Error says which field is wrong and why.
func (e *SpecError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrInvalidSpec }

// Validate checks a spec against the time now.
func (s *Spec) Validate(now time.Time) error {
	switch {
	case s.Name == "" || len(s.Name) > 128 || !utf8.ValidString(s.Name):
		return &SpecError{"name", "must be 1-128 bytes of UTF-8"}
	case len(s.Scopes) == 0:
		return &SpecError{"scopes", "must hold at least one of inference, jobs, admin, worker, metrics"}
	case len(s.Models) > 256:
		return &SpecError{"models", "may hold at most 256 models"}
	case s.Limits.RequestsPerMinute < 0 || s.Limits.TokensPerMinute < 0 || s.Limits.ConcurrentJobs < 0:
		return &SpecError{"limits", "must not be negative"}
	case !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now):
		return &SpecError{"expires_at", "must be in the future"}
	}
	for _, sc := range s.Scopes {
		if !sc.Valid() {
			return &SpecError{"scopes", fmt.Sprintf("unknown scope %q (want inference, jobs, admin, worker or metrics)", sc)}
		}
	}
	for _, m := range s.Models {
		if m == "" || len(m) > 256 {
			return &SpecError{"models", "names must be 1-256 bytes"}
		}
	}
	return nil
}

// Token format.
const (
	tokenPrefix  = "nvk_"
	idLen        = 12 // generated ids; given ones may be 1-32
	secretBytes  = 32
	minSecretLen = 16
	maxSecretLen = 128
)

// lower-case base32: no '_' (the separator) and nothing a shell or URL would mangle.
var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformed is a token that is not nvk_<id>_<secret>.
var ErrMalformed = errors.New("malformed API key")

// ParseToken splits a token into its id and secret.
func ParseToken(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", ErrMalformed
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !validID(id) || len(secret) < minSecretLen || len(secret) > maxSecretLen {
		return "", "", ErrMalformed
	}
	for _, r := range secret {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return "", "", ErrMalformed
		}
	}
	return id, secret, nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// newToken returns a fresh id and secret and the token made of them.
func newToken() (id, secret, token string) {
	var b [secretBytes + 8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	id = enc.EncodeToString(b[:8])[:idLen]
	secret = enc.EncodeToString(b[8:])
	return id, secret, tokenPrefix + id + "_" + secret
}

// hashSecret is what a store keeps of a secret. The secret is 256 random bits (or, for a
// bootstrap key, at least 16 characters the operator chose), so a fast hash is enough: there is
// nothing to brute-force.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
