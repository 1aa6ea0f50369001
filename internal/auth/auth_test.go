package auth

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/redistest"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		token      string
		id, secret string
		ok         bool
	}{
		{"nvk_abc123_0123456789abcdefXYZ", "abc123", "0123456789abcdefXYZ", true},
		{"nvk_abc_0123-456789abcdef", "abc", "0123-456789abcdef", true},
		{"nvk_ABC_0123456789abcdef", "", "", false},      // ids are lower case
		{"nvk_abc_short", "", "", false},                 // secret too short
		{"sk-abc_0123456789abcdef", "", "", false},       // not ours
		{"nvk_abc_0123456789abcdef_x", "", "", false},    // '_' in the secret
		{"nvk__0123456789abcdef", "", "", false},         // empty id
		{"nvk_abc_0123456789abcd\x00ef", "", "", false},  // control character
		{"nvk_abc_01234567890123456789é", "", "", false}, // non-ASCII
	} {
		id, secret, err := ParseToken(tc.token)
		if (err == nil) != tc.ok || id != tc.id || secret != tc.secret {
			t.Errorf("ParseToken(%q) = %q, %q, %v; want %q, %q, ok %v", tc.token, id, secret, err, tc.id, tc.secret, tc.ok)
		}
	}
	_, _, token := newToken()
	if _, _, err := ParseToken(token); err != nil {
		t.Errorf("a generated token does not parse: %q: %v", token, err)
	}
}

// stores runs f against both stores.
func stores(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		f(t, NewRedisStore(redistest.Client(t), redistest.Prefix(t)))
	})
}

func TestKeys(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		now := time.Now()
		clock := func() time.Time { return now }
		ks := NewKeys(s, clock)

		token, created, err := ks.Bootstrap(ctx, "nvk_admin_operatorchosen0123")
		if err != nil || !created || token != "nvk_admin_operatorchosen0123" {
			t.Fatalf("bootstrap = %q, %v, %v", token, created, err)
		}
		if _, created, _ := ks.Bootstrap(ctx, ""); created {
			t.Error("a second bootstrap created a key")
		}
		admin, err := ks.Authenticate(ctx, token)
		if err != nil || !admin.HasScope(ScopeAdmin) || !admin.HasScope(ScopeWorker) {
			t.Fatalf("bootstrap key: %+v, %v", admin, err)
		}

		now = now.Add(time.Second)
		k, tok, err := ks.Create(ctx, Spec{Name: "app", Scopes: []Scope{ScopeInference, ScopeJobs, ScopeInference}, Models: []string{"m"},
			Limits: Limits{RequestsPerMinute: 10}, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(k.Scopes, []Scope{ScopeInference, ScopeJobs}) {
			t.Errorf("scopes = %v, want sorted and deduplicated", k.Scopes)
		}
		got, err := ks.Authenticate(ctx, tok)
		if err != nil || got.ID != k.ID || got.Limits.RequestsPerMinute != 10 || !got.AllowsModel("m") || got.AllowsModel("n") {
			t.Fatalf("authenticate = %+v, %v", got, err)
		}
		if len(got.Hash) != 32 {
			t.Errorf("stored hash has %d bytes", len(got.Hash))
		}

		for _, tc := range []struct {
			token string
			want  error
		}{
			{"", ErrNoKey},
			{"garbage", ErrMalformed},
			{tok[:len(tok)-3] + "zzz", ErrWrongKey},
			{"nvk_nosuchid_0123456789abcdef", ErrWrongKey},
		} {
			if _, err := ks.Authenticate(ctx, tc.token); !errors.Is(err, tc.want) {
				t.Errorf("Authenticate(%q) = %v, want %v", tc.token, err, tc.want)
			}
		}

		now = now.Add(2 * time.Hour)
		if _, err := ks.Authenticate(ctx, tok); !errors.Is(err, ErrExpired) {
			t.Errorf("after expiry: %v, want ErrExpired", err)
		}
		now = now.Add(-2 * time.Hour)

		r, err := ks.Revoke(ctx, k.ID)
		if err != nil || r.RevokedAt.IsZero() {
			t.Fatalf("revoke = %+v, %v", r, err)
		}
		if _, err := ks.Authenticate(ctx, tok); !errors.Is(err, ErrRevoked) {
			t.Errorf("after revoking: %v, want ErrRevoked", err)
		}
		r2, err := ks.Revoke(ctx, k.ID)
		if err != nil || !r2.RevokedAt.Equal(r.RevokedAt) {
			t.Errorf("revoking again changed the time: %v -> %v (%v)", r.RevokedAt, r2.RevokedAt, err)
		}
		if _, err := ks.Revoke(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		all, err := ks.List(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "admin" {
			t.Errorf("list = %+v, %v", all, err)
		}
		if err := s.Create(ctx, admin); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate id: %v, want ErrExists", err)
		}

		for _, spec := range []Spec{
			{Name: "", Scopes: []Scope{ScopeJobs}},
			{Name: "x"},
			{Name: "x", Scopes: []Scope{"root"}},
			{Name: "x", Scopes: []Scope{ScopeJobs}, ExpiresAt: now.Add(-time.Second)},
			{Name: "x", Scopes: []Scope{ScopeJobs}, Limits: Limits{TokensPerMinute: -1}},
		} {
			if _, _, err := ks.Create(ctx, spec); !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Create(%+v) = %v, want ErrInvalidSpec", spec, err)
			}
		}

		a, err := s.Secret(ctx, "urls")
		b, err2 := s.Secret(ctx, "urls")
		c, _ := s.Secret(ctx, "other")
		if err != nil || err2 != nil || len(a) != 32 || string(a) != string(b) || string(a) == string(c) {
			t.Errorf("secrets: %x %x %x (%v %v)", a, b, c, err, err2)
		}
	})
}

// TestHasScope checks what each scope grants: itself only, and admin metrics as well.
func TestHasScope(t *testing.T) {
	tests := []struct {
		scopes []Scope
		want   map[Scope]bool
	}{
		{[]Scope{ScopeMetrics}, map[Scope]bool{ScopeMetrics: true}},
		{[]Scope{ScopeAdmin}, map[Scope]bool{ScopeAdmin: true, ScopeMetrics: true}},
		{[]Scope{ScopeInference, ScopeJobs}, map[Scope]bool{ScopeInference: true, ScopeJobs: true}},
		{[]Scope{ScopeWorker}, map[Scope]bool{ScopeWorker: true}},
		{Scopes, map[Scope]bool{ScopeInference: true, ScopeJobs: true, ScopeAdmin: true, ScopeWorker: true, ScopeMetrics: true}},
	}
	for _, tt := range tests {
		k := Key{Scopes: tt.scopes}
		for _, s := range Scopes {
			if got := k.HasScope(s); got != tt.want[s] {
				t.Errorf("key with %v: HasScope(%s) = %v, want %v", tt.scopes, s, got, tt.want[s])
			}
		}
	}
	spec := Spec{Name: "prometheus", Scopes: []Scope{ScopeMetrics}}
	if err := spec.Validate(time.Now()); err != nil {
		t.Errorf("a metrics-only key: %v", err)
	}
}

// TestBootstrapRace starts replicas at once on an empty store: exactly one creates a key.
func TestBootstrapRace(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := NewKeys(s, nil).Bootstrap(context.Background(), "")
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Errorf("%d replicas created a bootstrap key, want 1", created)
		}
	})
}

// limiters runs f against both limiters and slot implementations.
func limiters(t *testing.T, f func(t *testing.T, l Limiter, s Slots)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemoryLimiter(nil), NewMemorySlots(nil)) })
	t.Run("redis", func(t *testing.T) {
		rdb, p := redistest.Client(t), redistest.Prefix(t)
		f(t, NewRedisLimiter(rdb, p), NewRedisSlots(rdb, p))
	})
}

func TestLimiter(t *testing.T) {
	limiters(t, func(t *testing.T, l Limiter, _ Slots) {
		ctx := context.Background()
		for i := range 3 {
			d, err := l.Take(ctx, "b", 3, 1)
			if err != nil || !d.Allowed || d.Limit != 3 || d.Remaining != 2-i {
				t.Fatalf("take %d: %+v, %v", i, d, err)
			}
		}
		d, err := l.Take(ctx, "b", 3, 1)
		if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 21*time.Second || d.Remaining != 0 {
			t.Fatalf("fourth take: %+v, %v; want refused, retry within 20s", d, err)
		}
		// Pre-check and charge-afterwards, as tokens are counted.
		if d, _ := l.Take(ctx, "tok", 100, 0); !d.Allowed || d.Remaining != 100 {
			t.Errorf("pre-check on a full bucket: %+v", d)
		}
		if err := l.Charge(ctx, "tok", 100, 250); err != nil {
			t.Fatal(err)
		}
		if d, _ := l.Take(ctx, "tok", 100, 0); d.Allowed || d.RetryAfter <= 0 {
			t.Errorf("pre-check after overspending: %+v, want refused", d)
		}
		if d, _ := l.Take(ctx, "big", 5, 6); d.Allowed {
			t.Errorf("taking more than the bucket holds: %+v", d)
		}
	})
}

func TestSlots(t *testing.T) {
	limiters(t, func(t *testing.T, _ Limiter, s Slots) {
		ctx := context.Background()
		for _, id := range []string{"a", "b"} {
			if ok, err := s.Acquire(ctx, "k", id, 2, time.Minute); !ok || err != nil {
				t.Fatalf("acquire %s: %v %v", id, ok, err)
			}
		}
		if ok, _ := s.Acquire(ctx, "k", "c", 2, time.Minute); ok {
			t.Fatal("acquired a third slot of two")
		}
		if ok, _ := s.Acquire(ctx, "k", "a", 2, time.Minute); !ok {
			t.Error("re-acquiring a held slot failed")
		}
		held, _ := s.Held(ctx, "k")
		slices.Sort(held)
		if !slices.Equal(held, []string{"a", "b"}) {
			t.Errorf("held = %v", held)
		}
		_ = s.Release(ctx, "k", "a")
		if ok, _ := s.Acquire(ctx, "k", "c", 2, time.Minute); !ok {
			t.Error("no slot after a release")
		}
		// Expired slots free themselves.
		if ok, _ := s.Acquire(ctx, "e", "x", 1, 50*time.Millisecond); !ok {
			t.Fatal("acquire")
		}
		time.Sleep(80 * time.Millisecond)
		if ok, _ := s.Acquire(ctx, "e", "y", 1, time.Minute); !ok {
			t.Error("an expired slot still counts")
		}
	})
}
