package sqlitebroker

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// jobCols are the columns scanJob reads, in its order. n (the rowid) comes first for List's
// cursor.
const jobCols = `n, id, kind, model, owner, priority, status, attempts, max_attempts, idem_key, input, result,
	err_code, err_message, err_retryable, worker_id, created_at, started_at, finished_at, deadline`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// jobRow is a job with the columns List pages by.
type jobRow struct {
	job.Job
	n       int64
	created int64
}

// scanJob reads one row of jobCols, then any extra columns into extra.
func scanJob(s scanner, extra ...any) (jobRow, error) {
	var (
		r                           jobRow
		kind, priority, status      string
		input, result               []byte
		errCode, errMsg             sql.NullString
		errRetryable                bool
		started, finished, deadline sql.NullInt64
	)
	dest := []any{&r.n, &r.ID, &kind, &r.Model, &r.Owner, &priority, &status, &r.Attempts, &r.MaxAttempts,
		&r.IdempotencyKey, &input, &result, &errCode, &errMsg, &errRetryable, &r.WorkerID,
		&r.created, &started, &finished, &deadline}
	err := s.Scan(append(dest, extra...)...)
	if err != nil {
		return jobRow{}, err
	}
	r.Kind, r.Priority, r.Status = job.Kind(kind), job.Priority(priority), job.Status(status)
	if len(input) > 0 {
		r.Input = json.RawMessage(input)
	}
	if len(result) > 0 {
		r.Result = json.RawMessage(result)
	}
	if errMsg.Valid {
		r.Error = &job.Error{Code: errCode.String, Message: errMsg.String, Retryable: errRetryable}
	}
	r.CreatedAt = fromNanos(r.created)
	r.StartedAt = fromNullNanos(started)
	r.FinishedAt = fromNullNanos(finished)
	r.Deadline = fromNullNanos(deadline)
	return r, nil
}

// errorCols returns the three error columns of e: code, message (NULL for no error), retryable.
func errorCols(e *job.Error) (code, message any, retryable bool) {
	if e == nil {
		return nil, nil, false
	}
	return e.Code, e.Message, e.Retryable
}

// Times are stored as Unix nanoseconds: integers compare fast in indexes and keep the full
// precision of the injected clock.

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func fromNullNanos(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return fromNanos(ns.Int64)
}

// nullNanos is t in nanoseconds, or NULL for the zero time.
func nullNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// nanosRepresentable reports whether t survives a round trip through Unix nanoseconds (years
// 1678 to 2262).
func nanosRepresentable(t time.Time) bool {
	return t.IsZero() || time.Unix(0, t.UnixNano()).Equal(t)
}

// after is the time d after ns, saturating at the ends of int64 instead of wrapping, so that
// an absurd Config duration means "never" rather than "long ago".
func after(ns int64, d time.Duration) int64 {
	switch {
	case d > 0 && ns > math.MaxInt64-int64(d):
		return math.MaxInt64
	case d < 0 && ns < math.MinInt64-int64(d):
		return math.MinInt64
	}
	return ns + int64(d)
}

// nullBytes keeps an empty message NULL rather than a zero-length blob.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// statusData is the data of a status event.
func statusData(s job.Status, e *job.Error) []byte {
	b, err := json.Marshal(broker.StatusEvent{Status: s, Error: e})
	if err != nil {
		// A StatusEvent holds only strings and a bool; it always marshals.
		panic(fmt.Sprintf("marshal status event: %v", err))
	}
	return b
}

// A List cursor is the (created_at, n) of the last job of a page, base64url so that callers
// treat it as opaque.

func encodeCursor(created, n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created, 10) + "." + strconv.FormatInt(n, 10)))
}

var errBadCursor = errors.New("invalid list cursor")

func decodeCursor(c string) (created, n int64, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, 0, errBadCursor
	}
	a, b, ok := strings.Cut(string(raw), ".")
	if !ok {
		return 0, 0, errBadCursor
	}
	created, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errBadCursor
	}
	return created, n, nil
}

// eventID formats an event id; parseEventID reads one back ("" is before the first).
func eventID(id int64) string { return strconv.FormatInt(id, 10) }

func parseEventID(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("invalid event id %q: want the id of an earlier event", s)
	}
	return id, nil
}
