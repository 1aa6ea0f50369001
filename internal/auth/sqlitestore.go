package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// SQLiteStore keeps keys in a SQLite database file, for the embedded server. The file may be
// the embedded broker's: the keys live in their own tables.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS api_keys (
	id         TEXT    PRIMARY KEY,
	data       BLOB    NOT NULL,    -- storedKey as JSON
	created_at INTEGER NOT NULL,    -- unix nanoseconds, for ordering
	revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS server_secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);`

// OpenSQLite opens (creating when needed) the key store in the SQLite file at path.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	// WAL lets key lookups read while the broker writes to the same file; the busy timeout
	// absorbs the short write locks of both.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create key tables: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, k Key) error {
	data, err := encodeKey(k)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO api_keys (id, data, created_at) VALUES (?, ?, ?)`,
		k.ID, data, k.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrExists
	}
	return nil
}

// CreateFirst implements Store. One statement is atomic in SQLite.
func (s *SQLiteStore) CreateFirst(ctx context.Context, k Key) (bool, error) {
	data, err := encodeKey(k)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (id, data, created_at)
		SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM api_keys)`, k.ID, data, k.CreatedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("insert first key: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Get implements Store.
func (s *SQLiteStore) Get(ctx context.Context, id string) (Key, error) {
	var data []byte
	var revoked int64
	err := s.db.QueryRowContext(ctx, `SELECT data, revoked_at FROM api_keys WHERE id = ?`, id).Scan(&data, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("select key: %w", err)
	}
	return decodeKey(data, revoked)
}

// List implements Store.
func (s *SQLiteStore) List(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		var data []byte
		var revoked int64
		if err := rows.Scan(&data, &revoked); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		k, err := decodeKey(data, revoked)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Revoke implements Store.
func (s *SQLiteStore) Revoke(ctx context.Context, id string, at time.Time) (Key, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`,
		at.UnixNano(), id); err != nil {
		return Key{}, fmt.Errorf("revoke key: %w", err)
	}
	return s.Get(ctx, id)
}

// Secret implements Store.
func (s *SQLiteStore) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?, ?)`, name, fresh); err != nil {
		return nil, fmt.Errorf("store secret: %w", err)
	}
	var v []byte
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	return v, nil
}

// Close implements Store.
func (s *SQLiteStore) Close() error { return s.db.Close() }
