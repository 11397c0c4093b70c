package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// CompatibleFrom is the oldest schema version whose builds still
	// work with the schema once this migration is applied: the number in
	// the file's header comment "-- latch:compatible-from N" (an
	// expand-only change, such as a new table or a new nullable column,
	// declares the version before it or older), and Version itself when
	// the file has no such header (older builds must not use the schema).
	CompatibleFrom int
}

// CompatibleFromHeader starts the header comment line of a migration file
// that declares its CompatibleFrom: "-- latch:compatible-from 1".
const CompatibleFromHeader = "-- latch:compatible-from "

// compatVersion is the migration (0002_compatibility.sql) that adds the
// compatible_from column to schema_migrations; from it on, every applied
// migration's CompatibleFrom is recorded.
const compatVersion = 2

// ErrSchemaTooNew means the database holds a migration newer than this
// build that this build cannot work with.
var ErrSchemaTooNew = errors.New("the database schema is too new for this build")

// compatibleFrom reads the CompatibleFrom header among the comment lines
// that open sql; it is version when there is none.
func compatibleFrom(name, sql string, version int) (int, error) {
	for line := range strings.Lines(sql) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "--") {
			break // the header ends at the first statement
		}
		rest, ok := strings.CutPrefix(line, CompatibleFromHeader)
		if !ok {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || v < 1 || v > version {
			return 0, fmt.Errorf("reading migration %q: %q must name a version from 1 to %d", name, line, version)
		}
		return v, nil
	}
	return version, nil
}

// LoadMigrations reads the files named NNNN_name.sql at the root of fsys,
// ordered by number. Numbers must be positive and unique.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("reading migrations: %q does not start with a positive number", name)
		}
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("reading migrations: %q and %q share number %d", prev, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", name, err)
		}
		cf, err := compatibleFrom(name, string(b), v)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b), CompatibleFrom: cf})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate applies the migrations that q's schema_migrations table does not
// list, in order, recording each with its CompatibleFrom. The caller runs
// it inside one transaction and makes sure no other process migrates at
// the same time.
//
// A database may list migrations newer than this build's newest (a newer
// release ran `latch migrate` during a rolling upgrade). This build still
// starts when each of them recorded a CompatibleFrom no newer than its
// own newest version (they only expanded the schema); otherwise Migrate
// fails with ErrSchemaTooNew, naming the migration.
func Migrate(ctx context.Context, q Querier, ms []Migration) error {
	if _, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	versions, err := collect(ctx, q, func(r Row) (int, error) {
		var v int
		err := r.Scan(&v)
		return v, err
	}, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	newer := false
	for _, v := range versions {
		applied[v] = true
		newer = newer || v > latest
	}
	hasCompat := applied[compatVersion]
	if newer {
		if err := checkCompatible(ctx, q, latest, hasCompat); err != nil {
			return err
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := q.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.Name, err)
		}
		hasCompat = hasCompat || m.Version == compatVersion
		now := time.Now().UTC().Format(time.RFC3339Nano)
		if hasCompat {
			_, err = q.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at, compatible_from) VALUES ($1, $2, $3, $4)`,
				m.Version, m.Name, now, m.CompatibleFrom)
		} else {
			_, err = q.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, now)
		}
		if err != nil {
			return fmt.Errorf("recording migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// checkCompatible reports whether a build whose newest migration is
// latest may use a database holding newer migrations: each must have
// recorded a compatible_from of at most latest.
func checkCompatible(ctx context.Context, q Querier, latest int, hasCompat bool) error {
	type row struct {
		version int
		name    string
		cf      *int64
	}
	var rows []row
	var err error
	if hasCompat {
		rows, err = collect(ctx, q, func(r Row) (row, error) {
			var x row
			err := r.Scan(&x.version, &x.name, &x.cf)
			return x, err
		}, `SELECT version, name, compatible_from FROM schema_migrations WHERE version > $1 ORDER BY version`, latest)
	} else {
		rows, err = collect(ctx, q, func(r Row) (row, error) {
			var x row
			err := r.Scan(&x.version, &x.name)
			return x, err
		}, `SELECT version, name FROM schema_migrations WHERE version > $1 ORDER BY version`, latest)
	}
	if err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	for _, r := range rows {
		need := r.version
		if r.cf != nil {
			need = int(*r.cf)
		}
		if need > latest {
			return fmt.Errorf("checking schema version: %w: the database has migration %s (version %d), which builds "+
				"older than schema version %d cannot use; this build's newest is %d: run a newer release on this node",
				ErrSchemaTooNew, r.name, r.version, need, latest)
		}
	}
	return nil
}
