// Package sqlite is the embedded storage backend of Latch: the whole of
// store.Store in one SQLite database file, through mattn/go-sqlite3 (cgo).
// It needs no other process and serves one node.
//
// The database runs in WAL mode. Writes go through a pool of exactly one
// connection whose transactions begin IMMEDIATE, so writers queue in Go
// instead of failing with SQLITE_BUSY; reads go through a separate pool of
// query-only connections that WAL lets run beside the writer.
//
// Durability: the default synchronous=NORMAL does not fsync on every commit.
// In WAL mode a commit has been written to the WAL file (the operating
// system's page cache) before it is acknowledged, so every acknowledged
// write survives a crash or kill -9 of the process; only a power loss or an
// operating-system crash may lose the last commits (the database stays
// consistent). WithSynchronousFull makes every commit fsync and survive
// power loss too, at the cost of write throughput.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Option changes how Open sets up the database.
type Option func(*config)

type config struct {
	syncFull    bool
	readConns   int
	busyTimeout time.Duration
}

// WithSynchronousFull makes every commit fsync the WAL (synchronous=FULL),
// so that acknowledged writes survive a power loss as well as a process
// crash.
func WithSynchronousFull() Option {
	return func(c *config) { c.syncFull = true }
}

// WithReadConns sets how many connections serve reads (default: the number
// of CPUs, at least 4).
func WithReadConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readConns = n
		}
	}
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process before it fails (default 10s). Within one process the
// single writer connection means writers never wait on each other's locks.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// Store is the SQLite backend. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	w, r      *sql.DB
	closeOnce sync.Once
	closeErr  error

	// writes feeds the group-commit writer; quit stops it; stopped is
	// closed once it has answered every write it took.
	writes  chan *writeReq
	quit    chan struct{}
	stopped chan struct{}
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 128

// writeReq is one caller's write transaction waiting for the writer.
type writeReq struct {
	ctx  context.Context
	fn   func(q sqlstore.Querier) error
	done chan error
}

// Open opens (creating when missing) the database file at path. Call
// Migrate before using a new or upgraded database. path must name a file;
// an in-memory database cannot be shared by the two pools.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{readConns: max(4, runtime.NumCPU()), busyTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("opening sqlite database: path %q must be a plain file path", path)
	}
	syncMode := "NORMAL"
	if cfg.syncFull {
		syncMode = "FULL"
	}
	base := "file:" + escapePath(path) + "?_busy_timeout=" + fmt.Sprint(cfg.busyTimeout.Milliseconds()) +
		"&_foreign_keys=on&_stmt_cache_size=64"
	w, err := sql.Open("sqlite3", base+"&_journal_mode=WAL&_synchronous="+syncMode+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening sqlite database: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connects first: it creates the file and switches it to WAL
	// before any reader opens it.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening sqlite database: %w", err)
	}
	r, err := sql.Open("sqlite3", base+"&_query_only=on")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening sqlite database: %w", err)
	}
	r.SetMaxOpenConns(cfg.readConns)
	r.SetMaxIdleConns(cfg.readConns)
	r.SetConnMaxIdleTime(0)
	s := &Store{w: w, r: r, writes: make(chan *writeReq, maxBatch), quit: make(chan struct{}), stopped: make(chan struct{})}
	s.Store = sqlstore.New(sqlstore.Backend{
		Read:     querier{db: r},
		Write:    s.groupWrite,
		Classify: classify,
	})
	go s.writer()
	return s, nil
}

// errClosed answers writes made after Close.
var errClosed = errors.New("sqlite store is closed")

// groupWrite runs fn in a write transaction through the group-commit
// writer. SQLite has one writer at a time, and each transaction pays for
// its BEGIN, its WAL frames and its COMMIT; when writes queue up, the
// writer runs them together in one transaction, each inside its own
// SAVEPOINT, so one write's failure rolls back that write only. Every
// caller returns after the transaction holding its write has committed
// (or failed), so an acknowledged write is as durable as before.
func (s *Store) groupWrite(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-s.stopped:
		// The writer answered every write it took before stopping.
		select {
		case err := <-req.done:
			return err
		default:
			return errClosed
		}
	}
}

// writer takes queued writes in batches until the store closes.
func (s *Store) writer() {
	defer close(s.stopped)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case <-s.quit:
			for {
				select {
				case req := <-s.writes:
					req.done <- errClosed
				default:
					return
				}
			}
		case req := <-s.writes:
			batch = append(batch[:0], req)
		drain:
			for len(batch) < maxBatch {
				select {
				case more := <-s.writes:
					batch = append(batch, more)
				default:
					break drain
				}
			}
			s.runBatch(batch)
		}
	}
}

// runBatch runs the writes of batch in one transaction, each in a
// savepoint, and tells each caller its result.
func (s *Store) runBatch(batch []*writeReq) {
	if len(batch) == 1 {
		req := batch[0]
		req.done <- s.inTx(req.ctx, req.fn)
		return
	}
	results := make([]error, len(batch))
	err := func() error {
		// The batch's statements run detached from the callers'
		// contexts: a cancelled caller must not interrupt a statement,
		// which would abort the whole transaction of the others.
		tx, err := s.w.BeginTx(context.Background(), nil)
		if err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
		ctx := context.Background()
		for i, req := range batch {
			if err := req.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				results[i] = fmt.Errorf("opening savepoint: %w", err)
				continue
			}
			if err := req.fn(querier{db: tx, detach: true}); err != nil {
				results[i] = err
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO w"); rerr != nil {
					results[i] = errors.Join(err, fmt.Errorf("rolling back savepoint: %w", rerr))
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil && results[i] == nil {
				results[i] = fmt.Errorf("releasing savepoint: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("committing transaction: %w", err)
		}
		return nil
	}()
	for i, req := range batch {
		if results[i] == nil {
			results[i] = err
		}
		req.done <- results[i]
	}
}

// escapePath makes path safe inside a file: URI.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// inTx runs fn in one IMMEDIATE transaction on the writer connection.
func (s *Store) inTx(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(querier{db: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations the database lacks, in one
// IMMEDIATE transaction: the write lock it takes keeps other processes from
// migrating at the same time.
//
// Foreign-key enforcement is off while the migrations run, as SQLite asks
// for a table that is rebuilt (0008 rebuilds users: dropping the old table
// must not cascade to the rows that refer to it); every reference is
// checked before the transaction commits, so a migration that leaves a
// dangling one fails and changes nothing.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := sqlstore.LoadMigrations(mustSub(migrationFiles, "migrations"))
	if err != nil {
		return fmt.Errorf("migrating sqlite database: %w", err)
	}
	// The writer pool holds one connection, so the pragma applies to the
	// transaction below; it cannot change inside a transaction.
	if _, err := s.w.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("migrating sqlite database: turning foreign keys off: %w", err)
	}
	err = s.inTx(ctx, func(q sqlstore.Querier) error {
		if err := sqlstore.Migrate(ctx, q, ms); err != nil {
			return err
		}
		return checkForeignKeys(ctx, q)
	})
	if _, ferr := s.w.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
		err = fmt.Errorf("turning foreign keys on: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("migrating sqlite database: %w", err)
	}
	return nil
}

// checkForeignKeys fails when a row refers to a row that does not exist.
func checkForeignKeys(ctx context.Context, q sqlstore.Querier) error {
	var table, parent string
	var rowid sql.NullInt64
	var fk int
	err := q.QueryRow(ctx, `PRAGMA foreign_key_check`).Scan(&table, &rowid, &parent, &fk)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking foreign keys: %w", err)
	}
	return fmt.Errorf("checking foreign keys: a row of %s refers to a missing row of %s", table, parent)
}

// Ping reports whether both pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging sqlite writer: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging sqlite readers: %w", err)
	}
	return nil
}

// Close closes both pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.stopped
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("closing sqlite database: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// classify maps SQLite constraint errors to the store's sentinels.
func classify(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.ExtendedCode {
	case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case sqlite3.ErrConstraintForeignKey:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case sqlite3.ErrConstraintNotNull, sqlite3.ErrConstraintCheck:
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	return err
}

// sqlQuerier is what *sql.DB and *sql.Tx share.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier adapts database/sql to sqlstore.Querier: it rewrites $N
// placeholders to SQLite's ?N and times to fixed-width UTC text. A
// detached querier ignores the cancellation of the contexts it is given
// (see runBatch).
type querier struct {
	db     sqlQuerier
	detach bool
}

func (q querier) context(ctx context.Context) context.Context {
	if q.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(q.context(ctx), rebind(query), convert(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.db.QueryContext(q.context(ctx), rebind(query), convert(args)...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.db.QueryRowContext(q.context(ctx), rebind(query), convert(args)...)
}

// sqlRows adapts *sql.Rows to sqlstore.Rows.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// rebind turns $N placeholders into ?N, which SQLite binds by number.
func rebind(query string) string {
	return strings.ReplaceAll(query, "$", "?")
}

// timeLayout stores times as fixed-width UTC text, so that text order is
// time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// convert encodes time arguments as timeLayout text, copying args rather
// than changing the caller's slice.
func convert(args []any) []any {
	var out []any
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = t.UTC().Format(timeLayout)
		}
	}
	if out == nil {
		return args
	}
	return out
}

// mustSub returns the subtree dir of fsys; dir is a constant of this
// package, so failing is a programmer error.
func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

var _ store.Store = (*Store)(nil)
var _ store.KVPurger = (*Store)(nil)
