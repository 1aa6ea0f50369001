package redisbroker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/job"
)

// A job is a hash of plain fields, so the scripts can read and change the ones that drive its
// state (status, attempts, entry, lease_until …) without decoding JSON. Timestamps are stored as
// decimal Unix nanoseconds, so they come back exactly; the few the scripts compare are kept in
// milliseconds beside them (deadline_ms, lease_until, queued_at).

// jobFields returns the hash fields of a new job, as HSET arguments.
func jobFields(j *job.Job) []any {
	f := []any{
		"id", j.ID,
		"kind", string(j.Kind),
		"model", j.Model,
		"owner", j.Owner,
		"priority", string(j.Priority),
		"prank", j.Priority.Rank(),
		"status", string(j.Status),
		"attempts", j.Attempts,
		"max_attempts", j.MaxAttempts,
		"idem", j.IdempotencyKey,
		"input", string(j.Input),
		"created_at", nanos(j.CreatedAt),
	}
	if ms := deadlineMS(j); ms > 0 {
		f = append(f, "deadline", nanos(j.Deadline), "deadline_ms", ms)
	}
	return f
}

// deadlineMS is a job's deadline in Unix milliseconds, rounded up so that a job never expires
// early; 0 when it has none.
func deadlineMS(j *job.Job) int64 {
	if j.Deadline.IsZero() {
		return 0
	}
	ms := j.Deadline.UnixMilli()
	if j.Deadline.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

func nanos(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func parseNanos(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n).UTC(), nil
}

// stored is a job as read back from its hash, with the broker's own fields.
type stored struct {
	job.Job
	entry      string // id of the job's current queue entry
	leaseUntil time.Time
}

// decodeJob reads a job from its hash fields (HGETALL as a map).
func decodeJob(m map[string]string) (stored, error) {
	var s stored
	j := &s.Job
	j.ID = m["id"]
	j.Kind = job.Kind(m["kind"])
	j.Model = m["model"]
	j.Owner = m["owner"]
	j.Priority = job.Priority(m["priority"])
	j.Status = job.Status(m["status"])
	j.IdempotencyKey = m["idem"]
	j.WorkerID = m["worker"]
	if v := m["input"]; v != "" {
		j.Input = json.RawMessage(v)
	}
	if v := m["result"]; v != "" {
		j.Result = json.RawMessage(v)
	}
	if v := m["error"]; v != "" {
		j.Error = new(job.Error)
		if err := json.Unmarshal([]byte(v), j.Error); err != nil {
			return s, fmt.Errorf("job %s: error field: %w", j.ID, err)
		}
	}
	var err error
	for _, f := range []struct {
		name string
		n    *int
	}{{"attempts", &j.Attempts}, {"max_attempts", &j.MaxAttempts}} {
		if *f.n, err = strconv.Atoi(m[f.name]); err != nil {
			return s, fmt.Errorf("job %s: %s: %w", j.ID, f.name, err)
		}
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"created_at", &j.CreatedAt}, {"started_at", &j.StartedAt}, {"finished_at", &j.FinishedAt}, {"deadline", &j.Deadline}} {
		if *f.t, err = parseNanos(m[f.name]); err != nil {
			return s, fmt.Errorf("job %s: %s: %w", j.ID, f.name, err)
		}
	}
	s.entry = m["entry"]
	if v := m["lease_until"]; v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("job %s: lease_until: %w", j.ID, err)
		}
		s.leaseUntil = time.UnixMilli(ms).UTC()
	}
	if j.ID == "" {
		return s, fmt.Errorf("job hash without an id")
	}
	return s, nil
}

// decodeFlat reads a job from a flat field/value list, as a script's HGETALL returns it.
func decodeFlat(v any) (stored, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return stored{}, fmt.Errorf("unexpected job reply %T", v)
	}
	m := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return decodeJob(m)
}
