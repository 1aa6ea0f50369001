package auth

import (
	"context"
	"errors"
	"time"
)

// Store keeps keys. Every method is safe for concurrent use; every read sees every write that
// finished before it, on any API replica, which is what makes revocation immediate.
type Store interface {
	// Create adds k; ErrExists when its id is taken.
	Create(ctx context.Context, k Key) error
	// CreateFirst adds k only when the store holds no key at all, atomically, and reports
	// whether it did: replicas starting at once bootstrap one admin key between them.
	CreateFirst(ctx context.Context, k Key) (bool, error)
	// Get returns the key with id, or ErrNotFound.
	Get(ctx context.Context, id string) (Key, error)
	// List returns every key, oldest first.
	List(ctx context.Context) ([]Key, error)
	// Revoke marks a key revoked at at (a key already revoked keeps its first time) and returns
	// it; ErrNotFound when there is none.
	Revoke(ctx context.Context, id string, at time.Time) (Key, error)
	// Secret returns the 32-byte server secret called name, creating it on first use, so every
	// replica signs with the same one.
	Secret(ctx context.Context, name string) ([]byte, error)
	// Close releases the store's resources.
	Close() error
}

// Errors of the stores and of authentication, matched with errors.Is.
var (
	ErrNotFound = errors.New("key not found")
	ErrExists   = errors.New("key id already exists")
	// ErrNoKey: the request carries no key.
	ErrNoKey = errors.New("no API key")
	// ErrWrongKey: no key has this id and secret. Unknown ids and wrong secrets look the same.
	ErrWrongKey = errors.New("incorrect API key")
	ErrRevoked  = errors.New("API key revoked")
	ErrExpired  = errors.New("API key expired")
)
