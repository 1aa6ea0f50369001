// Package job defines the unit of work that flows from the API through a broker to a worker:
// its kinds, statuses, priorities and validation. It is plain data with no dependencies on the
// rest of neovratz, so every other package can share it.
package job

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what a job asks an engine to do.
type Kind string

// The kinds of job.
const (
	KindChat       Kind = "chat"
	KindCompletion Kind = "completion"
	KindEmbedding  Kind = "embedding"
	KindImage      Kind = "image"
)

// Kinds lists every valid kind in a stable order.
var Kinds = []Kind{KindChat, KindCompletion, KindEmbedding, KindImage}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Status is where a job stands in its life:
//
//	queued ──▶ running ──▶ succeeded | failed
//	  │  ▲        │
//	  │  └────────┘ lease lapsed / released (retry)
//	  ├──▶ canceled
//	  └──▶ expired (deadline passed before start)
type Status string

// The statuses of a job.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	StatusExpired   Status = "expired"
)

// Statuses lists every valid status in a stable order.
var Statuses = []Status{StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled, StatusExpired}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether a job in status s is finished for good.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCanceled, StatusExpired:
		return true
	}
	return false
}

// Priority orders queued jobs of one model: every high job is handed out before any normal one,
// every normal one before any low one; FIFO within a priority.
type Priority string

// The priorities, highest first.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists the priorities, highest first.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Valid reports whether p is one of the known priorities.
func (p Priority) Valid() bool {
	for _, v := range Priorities {
		if p == v {
			return true
		}
	}
	return false
}

// Rank is 0 for high, 1 for normal and 2 for low (and for anything unknown).
func (p Priority) Rank() int {
	switch p {
	case PriorityHigh:
		return 0
	case PriorityNormal:
		return 1
	}
	return 2
}

// Limits on the fields of a job. They keep one job from filling a broker.
const (
	MaxModelLen          = 256
	MaxOwnerLen          = 128
	MaxIdempotencyKeyLen = 255
	MaxInputBytes        = 8 << 20
	MaxAttemptsLimit     = 100
	DefaultMaxAttempts   = 3
)

// Job is one request for inference and everything the system knows about it.
type Job struct {
	ID       string   `json:"id"`
	Kind     Kind     `json:"kind"`
	Model    string   `json:"model"`
	Owner    string   `json:"owner,omitempty"` // API key id that submitted it
	Priority Priority `json:"priority"`
	Status   Status   `json:"status"`

	// Attempts counts the times a worker has taken the job (a released job does not count).
	Attempts    int `json:"attempts"`
	MaxAttempts int `json:"max_attempts"`

	IdempotencyKey string `json:"idempotency_key,omitempty"`

	Input  json.RawMessage `json:"input,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`

	// WorkerID is the worker that holds (or last held) the job.
	WorkerID string `json:"worker_id,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Deadline, when set, is the time by which the job must have started; after it the job expires.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Error is why a job failed, in words that are safe to show its owner.
type Error struct {
	Code      string `json:"code,omitempty"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable,omitempty"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// ValidationError says which field of a job is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ErrInvalid matches every ValidationError with errors.Is.
var ErrInvalid = errors.New("invalid job")

// Is makes errors.Is(err, ErrInvalid) true for validation errors.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Normalize fills the defaults of a job about to be enqueued: an ID, normal priority, the default
// attempt limit, status queued and the creation time.
func (j *Job) Normalize(now time.Time) {
	if j.ID == "" {
		j.ID = NewID()
	}
	if j.Priority == "" {
		j.Priority = PriorityNormal
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = DefaultMaxAttempts
	}
	if j.Status == "" {
		j.Status = StatusQueued
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now.UTC()
	}
}

// Validate checks a job that is about to be enqueued. The error is a *ValidationError naming the
// first field that is wrong.
func (j *Job) Validate() error {
	switch {
	case !validID(j.ID):
		return invalid("id", "must be 1-64 characters of letters, digits, '_' or '-'")
	case !j.Kind.Valid():
		return invalid("kind", "must be one of chat, completion, embedding, image (got %q)", j.Kind)
	case j.Model == "":
		return invalid("model", "is required")
	case len(j.Model) > MaxModelLen:
		return invalid("model", "is longer than %d bytes", MaxModelLen)
	case !printable(j.Model):
		return invalid("model", "must be printable UTF-8 without spaces")
	case len(j.Owner) > MaxOwnerLen || !printable(j.Owner):
		return invalid("owner", "must be printable UTF-8 without spaces, at most %d bytes", MaxOwnerLen)
	case !j.Priority.Valid():
		return invalid("priority", "must be one of high, normal, low (got %q)", j.Priority)
	case j.Status != StatusQueued:
		return invalid("status", "a new job must be queued (got %q)", j.Status)
	case j.MaxAttempts < 1 || j.MaxAttempts > MaxAttemptsLimit:
		return invalid("max_attempts", "must be between 1 and %d (got %d)", MaxAttemptsLimit, j.MaxAttempts)
	case j.Attempts != 0:
		return invalid("attempts", "must be 0 for a new job")
	case len(j.IdempotencyKey) > MaxIdempotencyKeyLen || !utf8.ValidString(j.IdempotencyKey):
		return invalid("idempotency_key", "must be valid UTF-8 of at most %d bytes", MaxIdempotencyKeyLen)
	case len(j.Input) > MaxInputBytes:
		return invalid("input", "is larger than %d bytes", MaxInputBytes)
	case len(j.Input) > 0 && !json.Valid(j.Input):
		return invalid("input", "is not valid JSON")
	case j.CreatedAt.IsZero():
		return invalid("created_at", "is required")
	case !j.Deadline.IsZero() && !j.Deadline.After(j.CreatedAt):
		return invalid("deadline", "must be after the creation time")
	}
	return nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 with no spaces or control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// NewID returns a new job id: "job_" then 26 characters of Crockford base32 that sort by creation
// time (48 bits of milliseconds, then 80 random bits, as in a ULID).
func NewID() string {
	return newIDAt(time.Now())
}

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

func newIDAt(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	// 128 bits → 26 base32 digits, most significant first (the first digit carries 3 bits).
	var out [26]byte
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return "job_" + string(out[:])
}
