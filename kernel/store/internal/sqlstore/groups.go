package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

const groupCols = `id, tenant_id, name, description, attributes, created_at, updated_at`

func scanGroup(r Row) (store.Group, error) {
	var g store.Group
	err := r.Scan(&g.ID, &g.TenantID, &g.Name, &g.Description, jsonDst(&g.Attributes),
		timeDst(&g.CreatedAt), timeDst(&g.UpdatedAt))
	return g, err
}

// CreateGroup stores g with a new id (kept when set).
func (s *Store) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	if err := checkGroup(g); err != nil {
		return store.Group{}, s.fail("creating group", err)
	}
	attrs, err := jsonArg(g.Attributes)
	if err != nil {
		return store.Group{}, s.fail("creating group", err)
	}
	g.ID = orNewID(g.ID)
	g.CreatedAt = now()
	g.UpdatedAt = g.CreatedAt
	err = s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO groups (`+groupCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			g.ID, g.TenantID, g.Name, g.Description, attrs, g.CreatedAt, g.UpdatedAt)
		return err
	})
	if err != nil {
		return store.Group{}, s.fail("creating group", err)
	}
	return g, nil
}

// GetGroup returns the group with the id.
func (s *Store) GetGroup(ctx context.Context, tenantID, id string) (store.Group, error) {
	g, err := scanGroup(s.read().QueryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return store.Group{}, s.fail("getting group", err)
	}
	return g, nil
}

// GetGroupByName returns the group with the name.
func (s *Store) GetGroupByName(ctx context.Context, tenantID, name string) (store.Group, error) {
	g, err := scanGroup(s.read().QueryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE tenant_id = $1 AND name = $2`, tenantID, name))
	if err != nil {
		return store.Group{}, s.fail("getting group by name", err)
	}
	return g, nil
}

// ListGroups lists the tenant's groups ordered by id.
func (s *Store) ListGroups(ctx context.Context, tenantID string, p store.Page) ([]store.Group, string, error) {
	p = p.Normalize()
	gs, err := collect(ctx, s.read(), scanGroup,
		`SELECT `+groupCols+` FROM groups WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing groups", err)
	}
	gs, next := page(gs, p.Limit, func(g store.Group) string { return g.ID })
	return gs, next, nil
}

// UpdateGroup replaces the stored group with g.
func (s *Store) UpdateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	if err := checkGroup(g); err != nil {
		return store.Group{}, s.fail("updating group", err)
	}
	attrs, err := jsonArg(g.Attributes)
	if err != nil {
		return store.Group{}, s.fail("updating group", err)
	}
	g.UpdatedAt = now()
	err = s.write(ctx, func(q Querier) error {
		return q.QueryRow(ctx, `UPDATE groups SET name = $3, description = $4, attributes = $5, updated_at = $6
			WHERE tenant_id = $1 AND id = $2 RETURNING created_at`,
			g.TenantID, g.ID, g.Name, g.Description, attrs, g.UpdatedAt).Scan(timeDst(&g.CreatedAt))
	})
	if err != nil {
		return store.Group{}, s.fail("updating group", err)
	}
	return g, nil
}

// DeleteGroup removes the group; foreign-key cascades remove its
// memberships and role assignments.
func (s *Store) DeleteGroup(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM groups WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	})
	if err != nil {
		return s.fail("deleting group", err)
	}
	return nil
}

// AddGroupMember makes the user a member of the group; adding a member
// twice is not an error.
func (s *Store) AddGroupMember(ctx context.Context, tenantID, groupID, userID string) error {
	err := s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "groups", "group", tenantID, groupID); err != nil {
			return err
		}
		if err := checkRef(ctx, q, "users", "user", tenantID, userID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, tenantID, groupID, userID)
		return err
	})
	if err != nil {
		return s.fail("adding group member", err)
	}
	return nil
}

// RemoveGroupMember removes the user from the group; removing a
// non-member is not an error.
func (s *Store) RemoveGroupMember(ctx context.Context, tenantID, groupID, userID string) error {
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND user_id = $3`,
			tenantID, groupID, userID)
		return err
	})
	if err != nil {
		return s.fail("removing group member", err)
	}
	return nil
}

// ListGroupMembers lists the group's members ordered by id.
func (s *Store) ListGroupMembers(ctx context.Context, tenantID, groupID string, p store.Page) ([]store.User, string, error) {
	p = p.Normalize()
	us, err := collect(ctx, s.read(), scanUser, `SELECT `+userCols+` FROM users
		WHERE tenant_id = $1 AND id IN (SELECT user_id FROM group_members WHERE tenant_id = $1 AND group_id = $2)
		AND id > $3 ORDER BY id LIMIT $4`, tenantID, groupID, p.After, p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing group members", err)
	}
	us, next := page(us, p.Limit, func(u store.User) string { return u.ID })
	return us, next, nil
}

// ListUserGroups lists the groups the user belongs to, ordered by name.
func (s *Store) ListUserGroups(ctx context.Context, tenantID, userID string) ([]store.Group, error) {
	gs, err := collect(ctx, s.read(), scanGroup, `SELECT `+groupCols+` FROM groups
		WHERE tenant_id = $1 AND id IN (SELECT group_id FROM group_members WHERE tenant_id = $1 AND user_id = $2)
		ORDER BY name, id`, tenantID, userID)
	if err != nil {
		return nil, s.fail("listing user groups", err)
	}
	return gs, nil
}
