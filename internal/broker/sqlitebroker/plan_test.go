package sqlitebroker

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/broker"
)

// TestQueryPlans keeps every statement on an index: a full scan of jobs or events would make an
// operation cost the size of the database, which no test with a small database would notice.
func TestQueryPlans(t *testing.T) {
	b, err := Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"), broker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var (
		w writeStmts
		r readStmts
	)
	for _, d := range append(w.defs(), r.defs()...) {
		q := strings.ReplaceAll(d.query, "#JOB", jobCols)
		if strings.HasPrefix(q, "BEGIN") || strings.HasPrefix(q, "COMMIT") || strings.HasPrefix(q, "ROLLBACK") {
			continue
		}
		t.Run(firstLine(q), func(t *testing.T) {
			for _, step := range queryPlan(t, b, q) {
				if step == "SCAN jobs" || step == "SCAN events" {
					t.Errorf("plan has a full table scan (%s):\n%s", step, q)
				}
			}
		})
	}
}

var numberedParam = regexp.MustCompile(`\?(\d+)`)

// queryPlan returns the steps of EXPLAIN QUERY PLAN for q, with every parameter bound to 1.
func queryPlan(t *testing.T, b *Broker, q string) []string {
	t.Helper()
	n := strings.Count(q, "?")
	if m := numberedParam.FindAllStringSubmatch(q, -1); m != nil {
		n = 0
		for _, p := range m {
			i, _ := strconv.Atoi(p[1])
			n = max(n, i)
		}
	}
	args := make([]any, n)
	for i := range args {
		args[i] = 1
	}
	rows, err := b.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, q)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// TestConnectionSettings checks the settings the package doc promises: WAL with
// synchronous=NORMAL and a busy timeout on every connection, writes only on the pinned one.
func TestConnectionSettings(t *testing.T) {
	b, err := Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"), broker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	rconn, err := b.db.Conn(ctx) // a read connection: the write one is pinned
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close()
	for _, c := range []struct {
		name string
		conn interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}
		queryOnly int
	}{{"write", b.wconn, 0}, {"read", rconn, 1}} {
		want := map[string]any{"journal_mode": "wal", "synchronous": "1", "busy_timeout": "10000", "query_only": fmt.Sprint(c.queryOnly)}
		for pragma, w := range want {
			var got string
			if err := c.conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s connection: PRAGMA %s: %v", c.name, pragma, err)
			}
			if got != w {
				t.Errorf("%s connection: %s = %s, want %s", c.name, pragma, got, w)
			}
		}
	}
	if _, err := rconn.ExecContext(ctx, "DELETE FROM workers"); err == nil {
		t.Error("a read connection could write")
	}
}
