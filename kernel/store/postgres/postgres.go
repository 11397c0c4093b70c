// Package postgres is the clustered storage backend of Latch: the whole of
// store.Store in PostgreSQL, through jackc/pgx/v5 and its pgxpool, for any
// number of stateless nodes sharing one database.
//
// Every method is one transaction at PostgreSQL's default READ COMMITTED
// isolation; uniqueness (usernames, client ids, the one active signing key
// of an algorithm, ...) is enforced by unique indexes, so racing writers get
// store.ErrConflict rather than duplicates. Migrations are embedded, one
// numbered file each, and run under a session-level advisory lock so that
// nodes starting together never migrate at once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// lockKey is the advisory lock that serializes migrations of one schema:
// nodes migrating different schemas of a database do not wait for each
// other.
const lockKey = `hashtext('latch.migrate:' || coalesce(current_schema(), ''))`

// Store is the PostgreSQL backend. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

// Option tunes the connection pool beyond what the DSN says.
type Option func(*pgxpool.Config)

// WithMaxConns caps the pool's open connections; n <= 0 keeps pgxpool's
// default (the larger of 4 and the number of CPUs) or the DSN's
// pool_max_conns.
func WithMaxConns(n int) Option {
	return func(c *pgxpool.Config) {
		if n > 0 {
			c.MaxConns = int32(min(n, 1<<20))
		}
	}
}

// WithMaxConnLifetime closes connections older than d; d <= 0 keeps the
// default (one hour) or the DSN's pool_max_conn_lifetime.
func WithMaxConnLifetime(d time.Duration) Option {
	return func(c *pgxpool.Config) {
		if d > 0 {
			c.MaxConnLifetime = d
		}
	}
}

// Open connects to the database named by dsn, a libpq connection string or
// URL (pgxpool's pool_* parameters and run-time parameters such as
// search_path are honoured), and checks that it answers. Call Migrate
// before using a new or upgraded database.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres dsn: %w", err)
	}
	for _, o := range opts {
		o(pc)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("opening postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening postgres pool: %w", err)
	}
	s := &Store{pool: pool}
	s.Store = sqlstore.New(sqlstore.Backend{
		Read:     querier{pool},
		Write:    s.inTx,
		Classify: classify,
	})
	return s, nil
}

// inTx runs fn in one transaction.
func (s *Store) inTx(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

// Migrate applies the embedded migrations the database lacks, in one
// transaction, holding an advisory lock for the current schema so that
// other nodes wait rather than migrate at the same time.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrating postgres database: %w", err)
	}
	ms, err := sqlstore.LoadMigrations(sub)
	if err != nil {
		return fmt.Errorf("migrating postgres database: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrating postgres database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A connection that cannot unlock must not go back to the pool
		// holding the lock; closing it releases the lock.
		unlockCtx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(`+lockKey+`)`); err != nil {
			_ = conn.Conn().Close(unlockCtx)
		}
	}()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return sqlstore.Migrate(ctx, querier{tx}, ms) })
	if err != nil {
		return fmt.Errorf("migrating postgres database: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging postgres: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// PostgreSQL error codes the store translates
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	codeUniqueViolation          = "23505"
	codeForeignKeyViolation      = "23503"
	codeNotNullViolation         = "23502"
	codeCheckViolation           = "23514"
	codeInvalidTextRepr          = "22P02"
	codeUntranslatableChar       = "22P05"
	codeCharacterNotInRepertoire = "22021"
)

// classify maps PostgreSQL constraint errors to the store's sentinels.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case codeUniqueViolation:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case codeNotNullViolation, codeCheckViolation, codeInvalidTextRepr, codeUntranslatableChar,
		codeCharacterNotInRepertoire:
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	return err
}

// pgQuerier is what *pgxpool.Pool and pgx.Tx share.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier adapts pgx to sqlstore.Querier.
type querier struct{ q pgQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.q.QueryRow(ctx, query, args...)
}

var _ store.Store = (*Store)(nil)
var _ store.KVPurger = (*Store)(nil)
