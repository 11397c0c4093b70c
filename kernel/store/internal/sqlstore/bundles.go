package sqlstore

import (
	"context"
	"fmt"

	"github.com/latchid/latch/kernel/store"
)

// bundleColumns are the columns a listing reads (every one but archive).
const bundleColumns = `name, version, abi_version, digest, manifest, state, installed_at,
	install_details, grants, tenants, config, secrets, signer, previous_version`

// PutBundle creates or replaces the bundle version. InstalledAt defaults to
// now. The install columns are written from b.Install (nil leaves them
// unset, as an older build did).
func (s *Store) PutBundle(ctx context.Context, b store.Bundle) error {
	if err := checkBundle(b); err != nil {
		return s.fail("putting bundle", err)
	}
	var (
		details          any
		grants, tenants  any = "[]", "[]"
		config, secrets  []byte
		signer, previous string
	)
	if in := b.Install; in != nil {
		details = 1
		var err error
		if grants, err = jsonArg(nonNil(in.Grants)); err != nil {
			return s.fail("putting bundle", err)
		}
		if tenants, err = jsonArg(nonNil(in.Tenants)); err != nil {
			return s.fail("putting bundle", err)
		}
		config, secrets, signer, previous = in.Config, in.Secrets, in.Signer, in.PreviousVersion
	}
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO bundles (name, version, abi_version, digest, manifest, archive, state, installed_at,
			install_details, grants, tenants, config, secrets, signer, previous_version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (name, version) DO UPDATE SET abi_version = excluded.abi_version, digest = excluded.digest,
			manifest = excluded.manifest, archive = excluded.archive, state = excluded.state,
			installed_at = excluded.installed_at, install_details = excluded.install_details,
			grants = excluded.grants, tenants = excluded.tenants, config = excluded.config,
			secrets = excluded.secrets, signer = excluded.signer, previous_version = excluded.previous_version`,
			b.Name, b.Version, b.ABIVersion, b.Digest, b.Manifest, b.Archive, b.State, orNow(b.InstalledAt),
			details, grants, tenants, config, secrets, signer, previous)
		return err
	})
	if err != nil {
		return s.fail("putting bundle", err)
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// bundleRow scans the bundleColumns (and the archive when withArchive).
type bundleRow struct {
	b       store.Bundle
	details *int64Col
	in      store.BundleInstall
}

func (r *bundleRow) dst(withArchive bool) []any {
	r.details = &int64Col{}
	out := []any{&r.b.Name, &r.b.Version, &r.b.ABIVersion, &r.b.Digest, &r.b.Manifest, &r.b.State, timeDst(&r.b.InstalledAt),
		r.details, jsonDst(&r.in.Grants), jsonDst(&r.in.Tenants), &r.in.Config, &r.in.Secrets, &r.in.Signer, &r.in.PreviousVersion}
	if withArchive {
		out = append(out, &r.b.Archive)
	}
	return out
}

func (r *bundleRow) bundle() store.Bundle {
	b := r.b
	if r.details.valid {
		in := r.in
		if in.Grants == nil {
			in.Grants = []string{}
		}
		if len(in.Tenants) == 0 {
			in.Tenants = nil
		}
		if len(in.Config) == 0 {
			in.Config = nil
		}
		if len(in.Secrets) == 0 {
			in.Secrets = nil
		}
		b.Install = &in
	}
	return b
}

// int64Col scans a nullable integer column.
type int64Col struct {
	v     int64
	valid bool
}

// Scan implements sql.Scanner.
func (c *int64Col) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		c.valid = false
	case int64:
		c.v, c.valid = v, true
	case int32:
		c.v, c.valid = int64(v), true
	default:
		return fmt.Errorf("scanning integer: unexpected %T", src)
	}
	return nil
}

// GetBundle returns the bundle version with its archive.
func (s *Store) GetBundle(ctx context.Context, name, version string) (store.Bundle, error) {
	var r bundleRow
	err := s.read().QueryRow(ctx, `SELECT `+bundleColumns+`, archive
		FROM bundles WHERE name = $1 AND version = $2`, name, version).Scan(r.dst(true)...)
	if err != nil {
		return store.Bundle{}, s.fail("getting bundle", err)
	}
	return r.bundle(), nil
}

// ListBundles lists every stored version without archives, ordered by name
// then install time.
func (s *Store) ListBundles(ctx context.Context) ([]store.Bundle, error) {
	bs, err := collect(ctx, s.read(), func(row Row) (store.Bundle, error) {
		var r bundleRow
		err := row.Scan(r.dst(false)...)
		return r.bundle(), err
	}, `SELECT `+bundleColumns+` FROM bundles
		ORDER BY name, installed_at, version`)
	if err != nil {
		return nil, s.fail("listing bundles", err)
	}
	return bs, nil
}

// SetBundleState sets the state of the bundle version.
func (s *Store) SetBundleState(ctx context.Context, name, version, state string) error {
	if err := checkBundleState(state); err != nil {
		return s.fail("setting bundle state", err)
	}
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `UPDATE bundles SET state = $3 WHERE name = $1 AND version = $2`,
			name, version, state))
	})
	if err != nil {
		return s.fail("setting bundle state", err)
	}
	return nil
}

// DeleteBundle removes the bundle version.
func (s *Store) DeleteBundle(ctx context.Context, name, version string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM bundles WHERE name = $1 AND version = $2`, name, version))
	})
	if err != nil {
		return s.fail("deleting bundle", err)
	}
	return nil
}
