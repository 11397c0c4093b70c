package sqlstore

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

const keyCols = `id, tenant_id, algorithm, state, private_sealed, public_jwk, created_at, not_after`

func scanKey(r Row) (store.SigningKey, error) {
	var k store.SigningKey
	err := r.Scan(&k.ID, &k.TenantID, &k.Algorithm, &k.State, &k.PrivateSealed, &k.PublicJWK,
		timeDst(&k.CreatedAt), timeDst(&k.NotAfter))
	return k, err
}

// CreateSigningKey stores k. CreatedAt defaults to now. A second active key
// for the same tenant and algorithm is store.ErrConflict.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if err := checkSigningKey(k); err != nil {
		return s.fail("creating signing key", err)
	}
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.ID, k.TenantID, k.Algorithm, k.State, k.PrivateSealed, k.PublicJWK, orNow(k.CreatedAt), ts(k.NotAfter))
		return err
	})
	if err != nil {
		return s.fail("creating signing key", err)
	}
	return nil
}

// GetSigningKey returns the key with the id.
func (s *Store) GetSigningKey(ctx context.Context, tenantID, id string) (store.SigningKey, error) {
	k, err := scanKey(s.read().QueryRow(ctx, `SELECT `+keyCols+` FROM signing_keys WHERE tenant_id = $1 AND id = $2`,
		tenantID, id))
	if err != nil {
		return store.SigningKey{}, s.fail("getting signing key", err)
	}
	return k, nil
}

// ListSigningKeys lists the tenant's keys that are not past NotAfter,
// newest first.
func (s *Store) ListSigningKeys(ctx context.Context, tenantID string) ([]store.SigningKey, error) {
	ks, err := collect(ctx, s.read(), scanKey, `SELECT `+keyCols+` FROM signing_keys
		WHERE tenant_id = $1 AND (not_after IS NULL OR not_after > $2) ORDER BY created_at DESC, id DESC`,
		tenantID, now())
	if err != nil {
		return nil, s.fail("listing signing keys", err)
	}
	return ks, nil
}

// RotateSigningKeys makes nextID the active key of its tenant and algorithm
// and moves the previously active key to KeyRetiring until retireAt.
// Rotating to the key that is already active changes nothing.
func (s *Store) RotateSigningKeys(ctx context.Context, tenantID, nextID string, retireAt time.Time) error {
	if retireAt.IsZero() {
		return s.fail("rotating signing keys", invalid("retire time is required"))
	}
	err := s.write(ctx, func(q Querier) error {
		var alg, state string
		err := q.QueryRow(ctx, `SELECT algorithm, state FROM signing_keys WHERE tenant_id = $1 AND id = $2`,
			tenantID, nextID).Scan(&alg, &state)
		if err != nil || state == store.KeyActive {
			return err
		}
		_, err = q.Exec(ctx, `UPDATE signing_keys SET state = $3, not_after = $4
			WHERE tenant_id = $1 AND algorithm = $2 AND state = $5`,
			tenantID, alg, store.KeyRetiring, norm(retireAt), store.KeyActive)
		if err != nil {
			return err
		}
		_, err = q.Exec(ctx, `UPDATE signing_keys SET state = $3, not_after = NULL WHERE tenant_id = $1 AND id = $2`,
			tenantID, nextID, store.KeyActive)
		return err
	})
	if err != nil {
		return s.fail("rotating signing keys", err)
	}
	return nil
}

// DeleteExpiredSigningKeys removes retiring keys past NotAfter at t.
func (s *Store) DeleteExpiredSigningKeys(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM signing_keys WHERE state = $1 AND not_after < $2`, store.KeyRetiring, norm(t))
		return err
	})
	if err != nil {
		return 0, s.fail("deleting expired signing keys", err)
	}
	return int(n), nil
}
