package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

const tenantCols = `id, name, display_name, enabled, settings, created_at, updated_at`

func scanTenant(r Row) (store.Tenant, error) {
	var t store.Tenant
	err := r.Scan(&t.ID, &t.Name, &t.DisplayName, &t.Enabled, jsonDst(&t.Settings),
		timeDst(&t.CreatedAt), timeDst(&t.UpdatedAt))
	return t, err
}

// CreateTenant stores t with a new id (kept when set).
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	if err := checkTenant(t); err != nil {
		return store.Tenant{}, s.fail("creating tenant", err)
	}
	settings, err := jsonArg(t.Settings)
	if err != nil {
		return store.Tenant{}, s.fail("creating tenant", err)
	}
	t.ID = orNewID(t.ID)
	t.CreatedAt = now()
	t.UpdatedAt = t.CreatedAt
	err = s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO tenants (`+tenantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.ID, t.Name, t.DisplayName, t.Enabled, settings, t.CreatedAt, t.UpdatedAt)
		return err
	})
	if err != nil {
		return store.Tenant{}, s.fail("creating tenant", err)
	}
	return t, nil
}

// GetTenant returns the tenant with the id.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	t, err := scanTenant(s.read().QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = $1`, id))
	if err != nil {
		return store.Tenant{}, s.fail("getting tenant", err)
	}
	return t, nil
}

// GetTenantByName returns the tenant with the name.
func (s *Store) GetTenantByName(ctx context.Context, name string) (store.Tenant, error) {
	t, err := scanTenant(s.read().QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = $1`, name))
	if err != nil {
		return store.Tenant{}, s.fail("getting tenant by name", err)
	}
	return t, nil
}

// ListTenants lists tenants ordered by id.
func (s *Store) ListTenants(ctx context.Context, p store.Page) ([]store.Tenant, string, error) {
	p = p.Normalize()
	ts, err := collect(ctx, s.read(), scanTenant,
		`SELECT `+tenantCols+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing tenants", err)
	}
	ts, next := page(ts, p.Limit, func(t store.Tenant) string { return t.ID })
	return ts, next, nil
}

// UpdateTenant replaces the stored tenant with t.
func (s *Store) UpdateTenant(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	if err := checkTenant(t); err != nil {
		return store.Tenant{}, s.fail("updating tenant", err)
	}
	settings, err := jsonArg(t.Settings)
	if err != nil {
		return store.Tenant{}, s.fail("updating tenant", err)
	}
	t.UpdatedAt = now()
	err = s.write(ctx, func(q Querier) error {
		return q.QueryRow(ctx, `UPDATE tenants SET name = $2, display_name = $3, enabled = $4, settings = $5, updated_at = $6
			WHERE id = $1 RETURNING created_at`,
			t.ID, t.Name, t.DisplayName, t.Enabled, settings, t.UpdatedAt).Scan(timeDst(&t.CreatedAt))
	})
	if err != nil {
		return store.Tenant{}, s.fail("updating tenant", err)
	}
	return t, nil
}

// DeleteTenant removes the tenant and every record it owns: the rows that
// reference it are removed by foreign-key cascades, its audit events and
// plugin key-value entries (which carry no foreign key) explicitly.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	err := s.write(ctx, func(q Querier) error {
		if err := mustChange(q.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id)); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM audit_events WHERE tenant_id = $1`, id); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `DELETE FROM plugin_kv WHERE tenant_id = $1`, id)
		return err
	})
	if err != nil {
		return s.fail("deleting tenant", err)
	}
	return nil
}
