package auth

import (
	"encoding/json"
	"time"
)

// storedKey is a Key as both stores serialize it: the hash included, the revocation time kept
// apart so that revoking is one small write.
type storedKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []Scope   `json:"scopes"`
	Models    []string  `json:"models,omitempty"`
	Limits    Limits    `json:"limits"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Hash      []byte    `json:"hash"`
}

func encodeKey(k Key) ([]byte, error) {
	return json.Marshal(storedKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Models: k.Models,
		Limits: k.Limits, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Hash: k.Hash})
}

func decodeKey(data []byte, revokedNanos int64) (Key, error) {
	var s storedKey
	if err := json.Unmarshal(data, &s); err != nil {
		return Key{}, err
	}
	k := Key{ID: s.ID, Name: s.Name, Scopes: s.Scopes, Models: s.Models, Limits: s.Limits,
		CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Hash: s.Hash}
	if revokedNanos != 0 {
		k.RevokedAt = time.Unix(0, revokedNanos).UTC()
	}
	return k, nil
}
