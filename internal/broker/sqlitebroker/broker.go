// Package sqlitebroker is the embedded broker of `neovratz serve`: the broker.Broker contract
// on one SQLite file, in pure Go (modernc.org/sqlite, no cgo), so that a single process needs no
// other service.
//
// # Connections
//
// SQLite lets one connection write at a time. The broker pins one connection of its *sql.DB for
// every write and serializes writers with its own lock (a one-token channel, so that a waiting
// caller can give up with its context). Writes run in BEGIN IMMEDIATE transactions, which take
// SQLite's write lock up front: a transaction that began as a reader and later writes can fail
// with SQLITE_BUSY, one that begins IMMEDIATE cannot (and with one writer it never waits).
// Writes that wait for the connection at the same moment share one transaction, each in a
// savepoint of its own (group commit, see write): the WAL is then written once for all of them.
// Reads (Get, List, Events, statistics) run on a small pool of other connections, which WAL lets
// run beside the writer, each on a consistent snapshot. Those connections are query_only.
//
// # Waiting
//
// Reserve and Events block without polling: each commit that queues a job wakes the reservers
// of its model, and each appended event wakes the readers of its job (notify.go). A timer covers
// the end of a retry's backoff. A maintenance goroutine reclaims lapsed leases, expires queued
// jobs past their deadline, and forgets finished jobs after the retention period.
//
// # Durability
//
// The file is in WAL mode with synchronous=NORMAL: a committed transaction survives a crash of
// the process; a power loss or an OS crash can lose the transactions committed since the last
// checkpoint, but never corrupts the file. Full fsync per commit would cost most of the
// throughput for a guarantee the embedded broker does not need.
//
// # One process
//
// One process owns the file. The wake-ups and the FIFO sequence counter live in memory, so a
// second process on the same file would not corrupt it or hand a job out twice (every change is
// a transaction), but it would miss the first one's wake-ups and could interleave FIFO order.
package sqlitebroker

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ broker.Broker = (*Broker)(nil)

// readConns is the size of the pool of read connections. Reads are short, so a few suffice to
// keep API readers from queueing behind each other; more would only compete for the CPUs.
const readConns = 4

// ErrNotDatabase is returned by Open for a file that is not a neovratz broker database.
var ErrNotDatabase = errors.New("not a neovratz broker database")

// Broker is the SQLite broker. Create it with Open; it is safe for concurrent use.
type Broker struct {
	cfg broker.Config
	log *slog.Logger

	db      *sql.DB
	wconn   *sql.Conn     // the one connection that writes
	wlock   chan struct{} // one token: held for each write transaction
	pmu     sync.Mutex
	pending []*writeReq // writes waiting for the next group commit (see write)
	w       writeStmts  // prepared on wconn; used under wlock
	r       readStmts   // prepared on db
	seq     int64       // the last FIFO sequence number given out; under wlock

	queues notifier // keyed by model: wakes Reserve
	logs   notifier // keyed by job id: wakes Events

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	stopMaint context.CancelFunc
	maintDone chan struct{}
}

// Open opens (creating it when missing) the broker database at path, a file whose directory
// must exist. It brings the schema up to date, reclaims the leases of jobs left running by a
// process that died (once those leases lapse), and starts the maintenance goroutine that Close
// stops. cfg's zero fields take their defaults; logger may be nil.
func Open(ctx context.Context, path string, cfg broker.Config, logger *slog.Logger) (*Broker, error) {
	b, err := open(ctx, path, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("open sqlite broker %s: %w", path, err)
	}
	return b, nil
}

func open(ctx context.Context, path string, cfg broker.Config, logger *slog.Logger) (*Broker, error) {
	abs, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1 + readConns)
	db.SetMaxIdleConns(1 + readConns)

	b := &Broker{
		cfg:   cfg.WithDefaults(),
		log:   logger,
		db:    db,
		wlock: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			_ = b.closeDB()
		}
	}()

	if b.wconn, err = db.Conn(ctx); err != nil {
		return nil, describeOpenErr(err)
	}
	var mode string
	if _, err := b.wconn.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		return nil, describeOpenErr(err)
	}
	if err := b.wconn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return nil, describeOpenErr(err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("cannot use WAL mode (journal mode is %q); is the file on a network file system?", mode)
	}
	if err := migrate(ctx, b.wconn); err != nil {
		return nil, describeOpenErr(err)
	}
	if err := prepareAll(ctx, b.wconn, b.w.defs()); err != nil {
		return nil, err
	}
	if err := prepareAll(ctx, b.db, b.r.defs()); err != nil {
		return nil, err
	}
	if err := b.wconn.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM jobs").Scan(&b.seq); err != nil {
		return nil, fmt.Errorf("read queue sequence: %w", err)
	}
	// Catch up at once: leases that lapsed while no process ran, deadlines that passed.
	var m maintainer
	if _, err := m.run(ctx, b); err != nil {
		return nil, err
	}

	mctx, stop := context.WithCancel(context.Background())
	b.stopMaint = stop
	b.maintDone = make(chan struct{})
	go b.maintain(mctx, m)
	ok = true
	return b, nil
}

// checkPath turns path into an absolute path and explains the usual mistakes before SQLite
// does so less clearly: a missing directory, a directory, a file that is not SQLite at all.
func checkPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("no database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", errors.New("want the path of a file (the broker needs a file that several connections share)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("database directory: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("database directory %s is not a directory", dir)
	}
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return abs, nil // SQLite creates it
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", err
	} else if fi.IsDir() {
		return "", fmt.Errorf("%s is a directory", abs)
	}
	header := make([]byte, 16)
	n, err := io.ReadFull(f, header)
	if n == 0 && (err == io.EOF || err == nil) {
		return abs, nil // an empty file becomes a new database
	}
	if !bytes.Equal(header[:n], []byte("SQLite format 3\x00")) {
		return "", fmt.Errorf("%w: the file is not an SQLite database", ErrNotDatabase)
	}
	return abs, nil
}

// describeOpenErr marks SQLite's complaints about a damaged or foreign file as ErrNotDatabase.
func describeOpenErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", ErrNotDatabase, err)
		case sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%w: the file is damaged: %w", ErrNotDatabase, err)
		}
	}
	return err
}

// dsn is the modernc.org/sqlite data source name for the file at abs. The _pragma parameters run
// on every new connection; journal_mode, which is a property of the file, is set once at Open.
func dsn(abs string) string {
	q := url.Values{}
	for _, p := range []string{
		"busy_timeout(10000)", // only another process (a backup, the sqlite3 shell) ever makes us wait
		"synchronous(NORMAL)", // see the package doc on durability
		"temp_store(MEMORY)",
		"cache_size(-16000)",           // 16 MB of page cache per connection
		"journal_size_limit(67108864)", // truncate the WAL to 64 MB after a checkpoint
		"query_only(1)",                // the pinned write connection turns it off
	} {
		q.Add("_pragma", p)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), OmitHost: true, RawQuery: q.Encode()}
	return u.String()
}

// Close stops the maintenance goroutine, wakes every blocked Reserve and Events call (they
// return ErrClosed), waits for the write in flight and closes the database.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.stopMaint()
		<-b.maintDone
		b.wlock <- struct{}{} // the write in flight ends; none starts after done is closed
		b.closeErr = b.closeDB()
	})
	return b.closeErr
}

func (b *Broker) closeDB() error {
	errs := []error{closeAll(b.w.defs()), closeAll(b.r.defs())}
	if b.wconn != nil {
		errs = append(errs, b.wconn.Close())
	}
	errs = append(errs, b.db.Close())
	return errors.Join(errs...)
}

// closed reports whether Close has begun.
func (b *Broker) closed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// readErr is err, or ErrClosed when the read failed because the broker closed under it.
func (b *Broker) readErr(err error) error {
	if b.closed() {
		return broker.ErrClosed
	}
	return err
}

// Ping reports whether the database answers.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed() {
		return broker.ErrClosed
	}
	var one int
	if err := b.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite broker: %w", b.readErr(err))
	}
	return nil
}

// Get returns a job by id.
func (b *Broker) Get(ctx context.Context, id string) (job.Job, error) {
	if b.closed() {
		return job.Job{}, broker.ErrClosed
	}
	r, err := scanJob(b.r.getJob.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return job.Job{}, fmt.Errorf("get %s: %w", id, broker.ErrNotFound)
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("get %s: %w", id, b.readErr(err))
	}
	return r.Job, nil
}

// wtx is one write transaction in progress. It collects the wake-ups to send once the
// transaction is committed and its changes are visible.
type wtx struct {
	b   *Broker
	w   *writeStmts
	ctx context.Context
	now int64 // Config.Now in Unix nanoseconds, one reading per transaction

	wakeQueues []string // models whose queue gained a job
	wakeLogs   []string // jobs whose event log grew
}

// write runs fn in a write transaction and commits it unless fn fails.
//
// Writes that wait for the write connection at the same moment share one transaction (group
// commit): the caller that gets the connection runs every write waiting then, each inside a
// savepoint so that one write's failure undoes only that write, and commits them together,
// so the WAL is written once per group instead of once per write. A write alone runs in a
// transaction of its own, as before.
//
// The caller's ctx bounds the wait for the write lock; once its write has begun it runs to its
// end without regard to ctx. The statements take microseconds, and an interrupted statement
// would leave the pinned connection's state to be repaired; finishing is simpler and as fast.
func (b *Broker) write(ctx context.Context, fn func(t *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed() {
		return broker.ErrClosed
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	b.pmu.Lock()
	b.pending = append(b.pending, r)
	b.pmu.Unlock()
	select {
	case <-r.done:
		return r.err
	case b.wlock <- struct{}{}:
		// Every group before ours has finished, so r is either done or still pending: run
		// what is pending, r with it.
		b.pmu.Lock()
		group := b.pending
		b.pending = nil
		b.pmu.Unlock()
		if len(group) > 0 {
			b.runGroup(group)
		}
		<-b.wlock
		<-r.done
		return r.err
	case <-ctx.Done():
		return b.withdraw(r, ctx.Err())
	case <-b.done:
		return b.withdraw(r, broker.ErrClosed)
	}
}

// writeReq is one write waiting for, or taken into, a group commit.
type writeReq struct {
	ctx  context.Context
	fn   func(t *wtx) error
	err  error
	done chan struct{} // closed once err is final
}

// withdraw takes r out of the pending writes and returns err; when another caller's group has
// taken r already, it waits for r's own result instead.
func (b *Broker) withdraw(r *writeReq, err error) error {
	b.pmu.Lock()
	i := slices.Index(b.pending, r)
	if i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
	}
	b.pmu.Unlock()
	if i >= 0 {
		return err
	}
	<-r.done
	return r.err
}

// runGroup runs writes in one transaction (under wlock) and closes their done channels.
func (b *Broker) runGroup(group []*writeReq) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	ctx := context.Background()
	fail := func(err error) {
		for _, r := range group {
			if r.err == nil {
				r.err = err
			}
		}
	}
	if b.closed() {
		fail(broker.ErrClosed)
		return
	}
	if _, err := b.w.begin.ExecContext(ctx); err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	var wakeQueues, wakeLogs []string
	ok := 0
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err // gave up before its write began
			continue
		}
		t := &wtx{b: b, w: &b.w, ctx: context.WithoutCancel(r.ctx), now: b.cfg.Now().UnixNano()}
		if len(group) == 1 {
			r.err = r.fn(t)
		} else if r.err = b.inSavepoint(t, r.fn); errors.Is(r.err, errTxLost) {
			// SQLite rolled the whole transaction back: every write of the group is lost.
			for _, o := range group {
				o.err = r.err
			}
			return
		}
		if r.err == nil {
			ok++
			wakeQueues = append(wakeQueues, t.wakeQueues...)
			wakeLogs = append(wakeLogs, t.wakeLogs...)
		}
	}
	if ok == 0 {
		b.rollback(ctx)
		return
	}
	if _, err := b.w.commit.ExecContext(ctx); err != nil {
		b.rollback(ctx)
		for _, r := range group {
			if r.err == nil {
				r.err = fmt.Errorf("commit: %w", err)
			}
		}
		return
	}
	b.queues.signal(wakeQueues...)
	b.logs.signal(wakeLogs...)
}

// errTxLost marks a write whose failure also ended the group's transaction.
var errTxLost = errors.New("the write transaction was rolled back")

// inSavepoint runs fn inside a savepoint of the group's transaction and undoes it when fn
// fails. When the savepoint cannot be undone — after some errors SQLite rolls the whole
// transaction back by itself — the error wraps errTxLost.
func (b *Broker) inSavepoint(t *wtx, fn func(t *wtx) error) error {
	if _, err := b.w.spSave.ExecContext(t.ctx); err != nil {
		return fmt.Errorf("savepoint: %w: %w", errTxLost, err)
	}
	err := fn(t)
	if err == nil {
		if _, rerr := b.w.spRelease.ExecContext(t.ctx); rerr != nil {
			return fmt.Errorf("release savepoint: %w: %w", errTxLost, rerr)
		}
		return nil
	}
	if _, rerr := b.w.spUndo.ExecContext(t.ctx); rerr != nil {
		return fmt.Errorf("%w: %w (undo: %v)", errTxLost, err, rerr)
	}
	if _, rerr := b.w.spRelease.ExecContext(t.ctx); rerr != nil {
		return fmt.Errorf("%w: %w (release: %v)", errTxLost, err, rerr)
	}
	return err
}

func (b *Broker) rollback(ctx context.Context) {
	if _, err := b.w.rollback.ExecContext(ctx); err != nil {
		// SQLite may have rolled back by itself already (after some errors it does); then
		// ROLLBACK fails harmlessly with "no transaction is active".
		b.log.Debug("sqlite broker rollback", "err", err)
	}
}

// nextSeq gives out the next FIFO sequence number. Call it only inside write.
func (t *wtx) nextSeq() int64 {
	t.b.seq++
	return t.b.seq
}

// nowTime is the transaction's clock reading as a time.Time.
func (t *wtx) nowTime() time.Time { return fromNanos(t.now) }
