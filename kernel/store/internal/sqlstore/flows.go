package sqlstore

import (
	"context"
	"errors"

	"github.com/latchid/latch/kernel/store"
)

const flowCols = `tenant_id, name, version, definition, comment, created_at`

func scanFlow(r Row) (store.Flow, error) {
	var f store.Flow
	err := r.Scan(&f.TenantID, &f.Name, &f.Version, jsonDst(&f.Definition), &f.Comment, timeDst(&f.CreatedAt))
	return f, err
}

// flowPutAttempts bounds the retries of PutFlow when another writer took
// the same version number first (a backend that does not lock rows on
// update).
const flowPutAttempts = 5

// PutFlow stores f.Definition as the flow's next version.
func (s *Store) PutFlow(ctx context.Context, f store.Flow) (store.Flow, error) {
	if err := required("tenant id", f.TenantID, "flow name", f.Name); err != nil {
		return store.Flow{}, s.fail("storing flow", err)
	}
	def, err := jsonArg(f.Definition)
	if err != nil {
		return store.Flow{}, s.fail("storing flow", err)
	}
	f.CreatedAt = now()
	for attempt := 1; ; attempt++ {
		err = s.write(ctx, func(q Querier) error {
			// Touching the tenant's row checks that it exists and, on
			// PostgreSQL, holds its row lock to the commit, so saves of
			// one tenant's flows take their version numbers in turn.
			if err := mustChange(q.Exec(ctx, `UPDATE tenants SET updated_at = updated_at WHERE id = $1`, f.TenantID)); err != nil {
				return err
			}
			var latest int64
			if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM auth_flows WHERE tenant_id = $1 AND name = $2`,
				f.TenantID, f.Name).Scan(&latest); err != nil {
				return err
			}
			f.Version = latest + 1
			_, err := q.Exec(ctx, `INSERT INTO auth_flows (`+flowCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
				f.TenantID, f.Name, f.Version, def, f.Comment, f.CreatedAt)
			return err
		})
		if err == nil {
			return f, nil
		}
		err = s.fail("storing flow", err)
		if !errors.Is(err, store.ErrConflict) || attempt == flowPutAttempts {
			return store.Flow{}, err
		}
	}
}

// GetFlow returns one version of a flow, or its latest for version 0.
func (s *Store) GetFlow(ctx context.Context, tenantID, name string, version int64) (store.Flow, error) {
	var (
		f   store.Flow
		err error
	)
	if version == 0 {
		f, err = scanFlow(s.read().QueryRow(ctx, `SELECT `+flowCols+` FROM auth_flows
			WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1`, tenantID, name))
	} else {
		f, err = scanFlow(s.read().QueryRow(ctx, `SELECT `+flowCols+` FROM auth_flows
			WHERE tenant_id = $1 AND name = $2 AND version = $3`, tenantID, name, version))
	}
	if err != nil {
		return store.Flow{}, s.fail("getting flow", err)
	}
	return f, nil
}

// ListFlows lists the latest version of each flow, ordered by name.
func (s *Store) ListFlows(ctx context.Context, tenantID string, p store.Page) ([]store.Flow, string, error) {
	p = p.Normalize()
	fs, err := collect(ctx, s.read(), scanFlow, `SELECT `+flowCols+` FROM auth_flows f
		WHERE tenant_id = $1 AND name > $2
		AND version = (SELECT MAX(version) FROM auth_flows l WHERE l.tenant_id = f.tenant_id AND l.name = f.name)
		ORDER BY name LIMIT $3`, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing flows", err)
	}
	fs, next := page(fs, p.Limit, func(f store.Flow) string { return f.Name })
	return fs, next, nil
}

// ListFlowVersions lists every version of a flow, oldest first.
func (s *Store) ListFlowVersions(ctx context.Context, tenantID, name string) ([]store.Flow, error) {
	fs, err := collect(ctx, s.read(), scanFlow, `SELECT `+flowCols+` FROM auth_flows
		WHERE tenant_id = $1 AND name = $2 ORDER BY version`, tenantID, name)
	if err == nil && len(fs) == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail("listing flow versions", err)
	}
	return fs, nil
}

// DeleteFlow removes every version of a flow.
func (s *Store) DeleteFlow(ctx context.Context, tenantID, name string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM auth_flows WHERE tenant_id = $1 AND name = $2`, tenantID, name))
	})
	if err != nil {
		return s.fail("deleting flow", err)
	}
	return nil
}
