package job

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

func validJob() Job {
	j := Job{Kind: KindChat, Model: "qwen2.5-0.5b", Owner: "key1", Input: json.RawMessage(`{"messages":[]}`)}
	j.Normalize(time.Unix(1700000000, 0))
	return j
}

func TestNormalizeFillsDefaults(t *testing.T) {
	j := Job{Kind: KindChat, Model: "m"}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	j.Normalize(now)
	if !strings.HasPrefix(j.ID, "job_") || len(j.ID) != 30 {
		t.Errorf("id = %q, want job_ + 26 characters", j.ID)
	}
	if j.Priority != PriorityNormal || j.Status != StatusQueued || j.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("defaults = %s/%s/%d, want normal/queued/%d", j.Priority, j.Status, j.MaxAttempts, DefaultMaxAttempts)
	}
	if !j.CreatedAt.Equal(now) || j.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want %v in UTC", j.CreatedAt, now)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("normalized job does not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Job)
		field  string // "" = valid
	}{
		{"valid", func(*Job) {}, ""},
		{"every kind", func(j *Job) { j.Kind = KindImage }, ""},
		{"no input", func(j *Job) { j.Input = nil }, ""},
		{"deadline after creation", func(j *Job) { j.Deadline = j.CreatedAt.Add(time.Second) }, ""},
		{"empty id", func(j *Job) { j.ID = "" }, "id"},
		{"id with slash", func(j *Job) { j.ID = "a/b" }, "id"},
		{"id too long", func(j *Job) { j.ID = strings.Repeat("a", 65) }, "id"},
		{"unknown kind", func(j *Job) { j.Kind = "video" }, "kind"},
		{"no model", func(j *Job) { j.Model = "" }, "model"},
		{"model too long", func(j *Job) { j.Model = strings.Repeat("m", MaxModelLen+1) }, "model"},
		{"model with space", func(j *Job) { j.Model = "a b" }, "model"},
		{"model with newline", func(j *Job) { j.Model = "a\nb" }, "model"},
		{"model not utf8", func(j *Job) { j.Model = "\xff" }, "model"},
		{"owner with control", func(j *Job) { j.Owner = "a\x00" }, "owner"},
		{"bad priority", func(j *Job) { j.Priority = "urgent" }, "priority"},
		{"not queued", func(j *Job) { j.Status = StatusRunning }, "status"},
		{"zero attempts", func(j *Job) { j.MaxAttempts = 0 }, "max_attempts"},
		{"too many attempts", func(j *Job) { j.MaxAttempts = MaxAttemptsLimit + 1 }, "max_attempts"},
		{"attempts used", func(j *Job) { j.Attempts = 1 }, "attempts"},
		{"idempotency key too long", func(j *Job) { j.IdempotencyKey = strings.Repeat("k", MaxIdempotencyKeyLen+1) }, "idempotency_key"},
		{"input not json", func(j *Job) { j.Input = json.RawMessage(`{"a":`) }, "input"},
		{"input too large", func(j *Job) { j.Input = json.RawMessage(`"` + strings.Repeat("x", MaxInputBytes) + `"`) }, "input"},
		{"no created_at", func(j *Job) { j.CreatedAt = time.Time{} }, "created_at"},
		{"deadline before creation", func(j *Job) { j.Deadline = j.CreatedAt.Add(-time.Second) }, "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.mutate(&j)
			err := j.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a ValidationError on %q", err, tc.field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
		})
	}
}

func TestStatusTerminal(t *testing.T) {
	want := map[Status]bool{StatusQueued: false, StatusRunning: false, StatusSucceeded: true, StatusFailed: true, StatusCanceled: true, StatusExpired: true}
	for _, s := range Statuses {
		if got := s.Terminal(); got != want[s] {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, want[s])
		}
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
	}
	if Status("done").Valid() {
		t.Error(`Status("done").Valid() = true`)
	}
}

func TestPriorityRank(t *testing.T) {
	for i, p := range Priorities {
		if p.Rank() != i {
			t.Errorf("%s.Rank() = %d, want %d", p, p.Rank(), i)
		}
	}
}

func TestIDsSortByTime(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	var ids []string
	for i := range 100 {
		ids = append(ids, newIDAt(base.Add(time.Duration(i)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made a millisecond apart do not sort by time")
	}
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		j := validJob()
		j.ID = id
		if err := j.Validate(); err != nil {
			t.Fatalf("NewID() = %q does not validate: %v", id, err)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	j := validJob()
	j.Error = &Error{Code: "bad_input", Message: "prompt too long"}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "started_at") {
		t.Errorf("zero started_at is serialized: %s", b)
	}
	var got Job
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != j.ID || got.Error.Message != j.Error.Message || !got.CreatedAt.Equal(j.CreatedAt) || string(got.Input) != string(j.Input) {
		t.Fatalf("round trip = %+v, want %+v", got, j)
	}
}
