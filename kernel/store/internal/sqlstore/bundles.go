package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

// PutBundle creates or replaces the bundle version. InstalledAt defaults to
// now.
func (s *Store) PutBundle(ctx context.Context, b store.Bundle) error {
	if err := checkBundle(b); err != nil {
		return s.fail("putting bundle", err)
	}
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO bundles (name, version, abi_version, digest, manifest, archive, state, installed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (name, version) DO UPDATE SET abi_version = excluded.abi_version, digest = excluded.digest,
			manifest = excluded.manifest, archive = excluded.archive, state = excluded.state,
			installed_at = excluded.installed_at`,
			b.Name, b.Version, b.ABIVersion, b.Digest, b.Manifest, b.Archive, b.State, orNow(b.InstalledAt))
		return err
	})
	if err != nil {
		return s.fail("putting bundle", err)
	}
	return nil
}

// GetBundle returns the bundle version with its archive.
func (s *Store) GetBundle(ctx context.Context, name, version string) (store.Bundle, error) {
	var b store.Bundle
	err := s.read().QueryRow(ctx, `SELECT name, version, abi_version, digest, manifest, archive, state, installed_at
		FROM bundles WHERE name = $1 AND version = $2`, name, version).Scan(&b.Name, &b.Version, &b.ABIVersion,
		&b.Digest, &b.Manifest, &b.Archive, &b.State, timeDst(&b.InstalledAt))
	if err != nil {
		return store.Bundle{}, s.fail("getting bundle", err)
	}
	return b, nil
}

// ListBundles lists every stored version without archives, ordered by name
// then install time.
func (s *Store) ListBundles(ctx context.Context) ([]store.Bundle, error) {
	bs, err := collect(ctx, s.read(), func(r Row) (store.Bundle, error) {
		var b store.Bundle
		err := r.Scan(&b.Name, &b.Version, &b.ABIVersion, &b.Digest, &b.Manifest, &b.State, timeDst(&b.InstalledAt))
		return b, err
	}, `SELECT name, version, abi_version, digest, manifest, state, installed_at FROM bundles
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
