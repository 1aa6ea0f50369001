package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// SQLite is a Store in a SQLite database file, for the embedded server: one table, outbox. The
// file may be shared with other stores; processes on one file share the items.
type SQLite struct {
	db *sql.DB
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS outbox (
	id   TEXT    PRIMARY KEY,
	data BLOB    NOT NULL,
	due  INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due);`

// OpenSQLite opens (creating when needed) the store in the SQLite file at path.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	// WAL and the busy timeout as the other stores on the same file use them.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create outbox table: %w", err)
	}
	return &SQLite{db: db}, nil
}

// Put implements Store.
func (s *SQLite) Put(ctx context.Context, item Item, due time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO outbox (id, data, due) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data, due = excluded.due`,
		item.ID, item.Data, due.UnixMilli()); err != nil {
		return fmt.Errorf("outbox put %s: %w", item.ID, err)
	}
	return nil
}

// Claim implements Store. One statement, so one atomic step.
func (s *SQLite) Claim(ctx context.Context, now time.Time, n int, until time.Time) ([]Item, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `UPDATE outbox SET due = ?
		WHERE id IN (SELECT id FROM outbox WHERE due <= ? ORDER BY due, rowid LIMIT ?)
		RETURNING id, data`, until.UnixMilli(), now.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ID, &it.Data); err != nil {
			return nil, fmt.Errorf("outbox claim: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	return out, nil
}

// Update implements Store.
func (s *SQLite) Update(ctx context.Context, item Item, due time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET data = ?, due = ? WHERE id = ?`, item.Data, due.UnixMilli(), item.ID)
	if err != nil {
		return false, fmt.Errorf("outbox update %s: %w", item.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("outbox delete %s: %w", id, err)
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }
