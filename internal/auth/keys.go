package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Keys issues, authenticates and revokes API keys on a Store.
type Keys struct {
	store Store
	now   func() time.Time
}

// NewKeys returns Keys on store; now is the clock (nil: time.Now).
func NewKeys(store Store, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{store: store, now: now}
}

// Store returns the store the keys live in.
func (ks *Keys) Store() Store { return ks.store }

// Create issues a new key and returns it with its token, which exists nowhere else: show it to
// its owner once.
func (ks *Keys) Create(ctx context.Context, s Spec) (Key, string, error) {
	now := ks.now()
	if err := s.Validate(now); err != nil {
		return Key{}, "", err
	}
	id, secret, token := newToken()
	k := keyFrom(s, id, secret, now)
	if err := ks.store.Create(ctx, k); err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, token, nil
}

func keyFrom(s Spec, id, secret string, now time.Time) Key {
	scopes := slices.Clone(s.Scopes)
	slices.Sort(scopes)
	return Key{
		ID: id, Name: s.Name, Scopes: slices.Compact(scopes), Models: slices.Clone(s.Models),
		Limits: s.Limits, CreatedAt: now.UTC(), ExpiresAt: s.ExpiresAt.UTC(), Hash: hashSecret(secret),
	}
}

// Bootstrap makes sure an empty store gets an admin key. With token set (NEOVRATZ_ADMIN_KEY) that
// token becomes the key; otherwise a new one is generated. It returns the token and true when it
// created the key, "" and false when the store already held keys.
func (ks *Keys) Bootstrap(ctx context.Context, token string) (string, bool, error) {
	var id, secret string
	if token != "" {
		var err error
		if id, secret, err = ParseToken(token); err != nil {
			return "", false, fmt.Errorf("bootstrap admin key: %w (want nvk_<id>_<secret>: id 1-32 of a-z 0-9, secret 16-128 of A-Z a-z 0-9 -)", err)
		}
	} else {
		id, secret, token = newToken()
	}
	spec := Spec{Name: "bootstrap admin", Scopes: Scopes}
	created, err := ks.store.CreateFirst(ctx, keyFrom(spec, id, secret, ks.now()))
	if err != nil {
		return "", false, fmt.Errorf("bootstrap admin key: %w", err)
	}
	if !created {
		return "", false, nil
	}
	return token, true, nil
}

// dummyHash is compared against when the id is unknown, so that a wrong id costs the same
// work as a wrong secret.
var dummyHash = hashSecret("neovratz-no-such-key")

// Authenticate returns the key a token belongs to. It reads the store on every call, so a
// revocation on any replica holds from the next request on. Errors: ErrNoKey, ErrMalformed,
// ErrWrongKey, ErrRevoked, ErrExpired, or a store failure (wrapped).
func (ks *Keys) Authenticate(ctx context.Context, token string) (Key, error) {
	if token == "" {
		return Key{}, ErrNoKey
	}
	id, secret, err := ParseToken(token)
	if err != nil {
		return Key{}, err
	}
	k, err := ks.store.Get(ctx, id)
	want := k.Hash
	switch {
	case errors.Is(err, ErrNotFound):
		want = dummyHash
	case err != nil:
		return Key{}, fmt.Errorf("look up key %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), want) != 1 || err != nil {
		return Key{}, ErrWrongKey
	}
	// Only the holder of the right secret learns that the key is revoked or expired.
	now := ks.now()
	if !k.RevokedAt.IsZero() {
		return Key{}, ErrRevoked
	}
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return Key{}, ErrExpired
	}
	return k, nil
}

// Get returns the key with id (ErrNotFound).
func (ks *Keys) Get(ctx context.Context, id string) (Key, error) { return ks.store.Get(ctx, id) }

// List returns every key, oldest first.
func (ks *Keys) List(ctx context.Context) ([]Key, error) { return ks.store.List(ctx) }

// Revoke revokes the key with id at once (ErrNotFound).
func (ks *Keys) Revoke(ctx context.Context, id string) (Key, error) {
	return ks.store.Revoke(ctx, id, ks.now().UTC())
}
