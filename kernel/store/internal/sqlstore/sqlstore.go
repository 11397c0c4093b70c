// Package sqlstore implements store.Store over a SQL database. It holds the
// queries and record rules that the SQLite and PostgreSQL backends share, so
// that both behave alike; each backend supplies its connections, its
// transaction runner, the translation of its driver's errors and its own
// migrations.
//
// Queries are written with PostgreSQL's numbered placeholders ($1, $2, ...),
// pass times as time.Time (UTC, truncated to microseconds, nil for the zero
// time) and maps and slices as JSON text (nil for a nil value). A backend
// rewrites whatever its driver needs differently.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Querier runs statements, on a connection pool or inside a transaction.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query that returns rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query that returns at most one row; its Scan reports
	// an error matching sql.ErrNoRows when there is none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Row is one result row.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set.
type Rows interface {
	Row
	Next() bool
	Err() error
	Close()
}

// Backend is what a SQL backend supplies to the engine.
type Backend struct {
	// Read runs reads outside a transaction.
	Read Querier
	// Write runs fn in one read-write transaction. It commits when fn
	// returns nil and rolls back otherwise, returning fn's error.
	Write func(ctx context.Context, fn func(q Querier) error) error
	// Classify wraps a driver error that means a store sentinel (a unique
	// violation is store.ErrConflict, a missing foreign key store.ErrNotFound,
	// a broken check store.ErrInvalid) so that errors.Is finds both, and
	// returns any other error unchanged.
	Classify func(err error) error
}

// Store implements every record method of store.Store. A backend embeds it
// and adds Migrate, Ping and Close.
type Store struct {
	b Backend
}

// New returns an engine that runs on b.
func New(b Backend) *Store {
	return &Store{b: b}
}

// read returns the querier for reads outside a transaction.
func (s *Store) read() Querier { return s.b.Read }

// write runs fn in one transaction.
func (s *Store) write(ctx context.Context, fn func(q Querier) error) error {
	return s.b.Write(ctx, fn)
}

// fail wraps err, translated to the store's sentinels, with the phrase op.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrVersionMismatch):
	case errors.Is(err, sql.ErrNoRows):
		err = store.ErrNotFound
	default:
		err = s.b.Classify(err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// now returns the current time as the store keeps it.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// norm returns t as the store keeps it: UTC, microsecond precision.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// orNow returns norm(t), or now when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return norm(t)
}

// ts encodes t as a query argument: nil for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return norm(t)
}

// orNewID returns id, or a new id when id is empty.
func orNewID(id string) string {
	if id == "" {
		return store.NewID()
	}
	return id
}

// jsonArg encodes v as a JSON query argument: nil for a nil map or slice.
func jsonArg[T any](v T) (any, error) {
	switch x := any(v).(type) {
	case map[string]any:
		if x == nil {
			return nil, nil
		}
	case []string:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding json: %w: %w", store.ErrInvalid, err)
	}
	return string(b), nil
}

// timeCol scans a time column: NULL is the zero time, anything else UTC.
type timeCol struct{ p *time.Time }

func timeDst(p *time.Time) *timeCol { return &timeCol{p} }

// Scan implements sql.Scanner.
func (c *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = time.Time{}
	case time.Time:
		*c.p = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scanning time: unexpected %T", src)
	}
	return nil
}

func (c *timeCol) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scanning time: %w", err)
	}
	*c.p = t.UTC()
	return nil
}

// jsonCol scans a JSON column into p: NULL leaves p untouched.
type jsonCol struct{ p any }

func jsonDst(p any) *jsonCol { return &jsonCol{p} }

// Scan implements sql.Scanner.
func (c *jsonCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scanning json: unexpected %T", src)
	}
	if err := json.Unmarshal(b, c.p); err != nil {
		return fmt.Errorf("scanning json: %w", err)
	}
	return nil
}

// collect reads every row of a query with scan.
func collect[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// page trims items fetched with limit+1 to limit and returns the cursor of
// the next page: the key of the last item kept, or "" on the last page.
func page[T any](items []T, limit int, key func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, key(items[limit-1])
}

// where builds a conjunction of conditions with numbered arguments.
type where struct {
	conds []string
	args  []any
}

// arg adds v to the arguments and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// and adds a condition.
func (w *where) and(cond string) { w.conds = append(w.conds, cond) }

// String returns the WHERE clause, or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// checkRef reports whether id names a record of table in tenantID: it is
// store.ErrNotFound when no such record exists and store.ErrInvalid when the
// record belongs to another tenant. Ids of users are unique per tenant
// only (the shadows of directory users), so a record of tenantID is looked
// for first.
func checkRef(ctx context.Context, q Querier, table, what, tenantID, id string) error {
	var owner string
	err := q.QueryRow(ctx, "SELECT tenant_id FROM "+table+" WHERE id = $1 ORDER BY tenant_id = $2 DESC LIMIT 1", id, tenantID).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s %q: %w", what, id, store.ErrNotFound)
	case err != nil:
		return err
	case owner != tenantID:
		return fmt.Errorf("%s %q belongs to another tenant: %w", what, id, store.ErrInvalid)
	}
	return nil
}

// mustChange turns a statement that changed no row into store.ErrNotFound.
func mustChange(n int64, err error) error {
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// notExpired is the condition that keeps rows whose expires_at is unset or
// after the argument at placeholder p.
func notExpired(p string) string {
	return "(expires_at IS NULL OR expires_at > " + p + ")"
}
