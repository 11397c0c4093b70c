package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

const roleCols = `id, tenant_id, name, description, permissions, created_at, updated_at`

func scanRole(r Row) (store.Role, error) {
	var ro store.Role
	err := r.Scan(&ro.ID, &ro.TenantID, &ro.Name, &ro.Description, jsonDst(&ro.Permissions),
		timeDst(&ro.CreatedAt), timeDst(&ro.UpdatedAt))
	return ro, err
}

// assignment names the table and column that hold assignments of a
// subject kind, and the table the subject lives in.
func assignment(kind string) (table, column, subjects string) {
	if kind == store.SubjectGroup {
		return "role_groups", "group_id", "groups"
	}
	return "role_users", "user_id", "users"
}

// CreateRole stores r with a new id (kept when set).
func (s *Store) CreateRole(ctx context.Context, r store.Role) (store.Role, error) {
	if err := checkRole(r); err != nil {
		return store.Role{}, s.fail("creating role", err)
	}
	perms, err := jsonArg(r.Permissions)
	if err != nil {
		return store.Role{}, s.fail("creating role", err)
	}
	r.ID = orNewID(r.ID)
	r.CreatedAt = now()
	r.UpdatedAt = r.CreatedAt
	err = s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO roles (`+roleCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.ID, r.TenantID, r.Name, r.Description, perms, r.CreatedAt, r.UpdatedAt)
		return err
	})
	if err != nil {
		return store.Role{}, s.fail("creating role", err)
	}
	return r, nil
}

// GetRole returns the role with the id.
func (s *Store) GetRole(ctx context.Context, tenantID, id string) (store.Role, error) {
	r, err := scanRole(s.read().QueryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return store.Role{}, s.fail("getting role", err)
	}
	return r, nil
}

// GetRoleByName returns the role with the name.
func (s *Store) GetRoleByName(ctx context.Context, tenantID, name string) (store.Role, error) {
	r, err := scanRole(s.read().QueryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE tenant_id = $1 AND name = $2`, tenantID, name))
	if err != nil {
		return store.Role{}, s.fail("getting role by name", err)
	}
	return r, nil
}

// ListRoles lists the tenant's roles ordered by id.
func (s *Store) ListRoles(ctx context.Context, tenantID string, p store.Page) ([]store.Role, string, error) {
	p = p.Normalize()
	rs, err := collect(ctx, s.read(), scanRole,
		`SELECT `+roleCols+` FROM roles WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing roles", err)
	}
	rs, next := page(rs, p.Limit, func(r store.Role) string { return r.ID })
	return rs, next, nil
}

// UpdateRole replaces the stored role with r.
func (s *Store) UpdateRole(ctx context.Context, r store.Role) (store.Role, error) {
	if err := checkRole(r); err != nil {
		return store.Role{}, s.fail("updating role", err)
	}
	perms, err := jsonArg(r.Permissions)
	if err != nil {
		return store.Role{}, s.fail("updating role", err)
	}
	r.UpdatedAt = now()
	err = s.write(ctx, func(q Querier) error {
		return q.QueryRow(ctx, `UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = $6
			WHERE tenant_id = $1 AND id = $2 RETURNING created_at`,
			r.TenantID, r.ID, r.Name, r.Description, perms, r.UpdatedAt).Scan(timeDst(&r.CreatedAt))
	})
	if err != nil {
		return store.Role{}, s.fail("updating role", err)
	}
	return r, nil
}

// DeleteRole removes the role; foreign-key cascades remove its assignments.
func (s *Store) DeleteRole(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM roles WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	})
	if err != nil {
		return s.fail("deleting role", err)
	}
	return nil
}

// AssignRole assigns the role to a user or group of the tenant; assigning
// twice is not an error.
func (s *Store) AssignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error {
	if err := checkSubjectKind(kind); err != nil {
		return s.fail("assigning role", err)
	}
	table, column, subjects := assignment(kind)
	err := s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "roles", "role", tenantID, roleID); err != nil {
			return err
		}
		if err := checkRef(ctx, q, subjects, kind, tenantID, subjectID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO `+table+` (tenant_id, role_id, `+column+`) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, tenantID, roleID, subjectID)
		return err
	})
	if err != nil {
		return s.fail("assigning role", err)
	}
	return nil
}

// UnassignRole removes the assignment; removing one that does not exist is
// not an error.
func (s *Store) UnassignRole(ctx context.Context, tenantID, roleID, kind, subjectID string) error {
	if err := checkSubjectKind(kind); err != nil {
		return s.fail("unassigning role", err)
	}
	table, column, _ := assignment(kind)
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1 AND role_id = $2 AND `+column+` = $3`,
			tenantID, roleID, subjectID)
		return err
	})
	if err != nil {
		return s.fail("unassigning role", err)
	}
	return nil
}

// ListSubjectRoles lists the roles assigned directly to the subject,
// ordered by name.
func (s *Store) ListSubjectRoles(ctx context.Context, tenantID, kind, subjectID string) ([]store.Role, error) {
	if err := checkSubjectKind(kind); err != nil {
		return nil, s.fail("listing subject roles", err)
	}
	table, column, _ := assignment(kind)
	rs, err := collect(ctx, s.read(), scanRole, `SELECT `+roleCols+` FROM roles
		WHERE tenant_id = $1 AND id IN (SELECT role_id FROM `+table+` WHERE tenant_id = $1 AND `+column+` = $2)
		ORDER BY name, id`, tenantID, subjectID)
	if err != nil {
		return nil, s.fail("listing subject roles", err)
	}
	return rs, nil
}

// ListEffectiveUserRoles lists the roles of a user, directly and through
// its groups, without duplicates, ordered by name.
func (s *Store) ListEffectiveUserRoles(ctx context.Context, tenantID, userID string) ([]store.Role, error) {
	rs, err := collect(ctx, s.read(), scanRole, `SELECT `+roleCols+` FROM roles
		WHERE tenant_id = $1 AND id IN (
			SELECT role_id FROM role_users WHERE tenant_id = $1 AND user_id = $2
			UNION
			SELECT role_id FROM role_groups WHERE tenant_id = $1 AND group_id IN (
				SELECT group_id FROM group_members WHERE tenant_id = $1 AND user_id = $2))
		ORDER BY name, id`, tenantID, userID)
	if err != nil {
		return nil, s.fail("listing effective user roles", err)
	}
	return rs, nil
}
