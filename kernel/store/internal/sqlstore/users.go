package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchid/latch/kernel/store"
)

const userCols = `id, tenant_id, username, password_hash, email, email_verified, phone_number,
	display_name, given_name, family_name, enabled, locked_until, attributes, version, created_at, updated_at`

func scanUser(r Row) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.TenantID, &u.Username, &u.PasswordHash, &u.Email, &u.EmailVerified, &u.PhoneNumber,
		&u.DisplayName, &u.GivenName, &u.FamilyName, &u.Enabled, timeDst(&u.LockedUntil), jsonDst(&u.Attributes),
		&u.Version, timeDst(&u.CreatedAt), timeDst(&u.UpdatedAt))
	return u, err
}

// CreateUser stores u with a new id (kept when set) and Version 1.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if err := checkUser(u); err != nil {
		return store.User{}, s.fail("creating user", err)
	}
	attrs, err := jsonArg(u.Attributes)
	if err != nil {
		return store.User{}, s.fail("creating user", err)
	}
	u.ID = orNewID(u.ID)
	u.Version = 1
	u.LockedUntil = norm(u.LockedUntil)
	u.CreatedAt = now()
	u.UpdatedAt = u.CreatedAt
	err = s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO users (id, tenant_id, username, username_fold, password_hash, email, email_fold,
			email_verified, phone_number, display_name, given_name, family_name, enabled, locked_until, attributes,
			version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			u.ID, u.TenantID, u.Username, fold(u.Username), u.PasswordHash, u.Email, fold(u.Email),
			u.EmailVerified, u.PhoneNumber, u.DisplayName, u.GivenName, u.FamilyName, u.Enabled, ts(u.LockedUntil), attrs,
			u.Version, u.CreatedAt, u.UpdatedAt)
		return err
	})
	if err != nil {
		return store.User{}, s.fail("creating user", err)
	}
	return u, nil
}

// GetUser returns the user with the id.
func (s *Store) GetUser(ctx context.Context, tenantID, id string) (store.User, error) {
	u, err := scanUser(s.read().QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return store.User{}, s.fail("getting user", err)
	}
	return u, nil
}

// GetUserByUsername returns the user with the username, compared
// case-insensitively.
func (s *Store) GetUserByUsername(ctx context.Context, tenantID, username string) (store.User, error) {
	u, err := scanUser(s.read().QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE tenant_id = $1 AND username_fold = $2`,
		tenantID, fold(username)))
	if err != nil {
		return store.User{}, s.fail("getting user by username", err)
	}
	return u, nil
}

// ListUsers lists the tenant's users that match q, ordered by id.
func (s *Store) ListUsers(ctx context.Context, tenantID string, uq store.UserQuery) ([]store.User, string, error) {
	p := uq.Normalize()
	var w where
	w.and("tenant_id = " + w.arg(tenantID))
	if uq.Username != "" {
		w.and("username_fold = " + w.arg(fold(uq.Username)))
	}
	if uq.Email != "" {
		w.and("email_fold = " + w.arg(fold(uq.Email)))
	}
	w.and("id > " + w.arg(p.After))
	us, err := collect(ctx, s.read(), scanUser,
		`SELECT `+userCols+` FROM users`+w.String()+` ORDER BY id LIMIT `+w.arg(p.Limit+1), w.args...)
	if err != nil {
		return nil, "", s.fail("listing users", err)
	}
	us, next := page(us, p.Limit, func(u store.User) string { return u.ID })
	return us, next, nil
}

// CountUsers returns how many users the tenant has.
func (s *Store) CountUsers(ctx context.Context, tenantID string) (int, error) {
	var n int
	if err := s.read().QueryRow(ctx, `SELECT count(*) FROM users WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
		return 0, s.fail("counting users", err)
	}
	return n, nil
}

// UpdateUser replaces the stored user with u when u.Version is zero or the
// stored version.
func (s *Store) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	if err := checkUser(u); err != nil {
		return store.User{}, s.fail("updating user", err)
	}
	attrs, err := jsonArg(u.Attributes)
	if err != nil {
		return store.User{}, s.fail("updating user", err)
	}
	u.LockedUntil = norm(u.LockedUntil)
	u.UpdatedAt = now()
	err = s.write(ctx, func(q Querier) error {
		err := q.QueryRow(ctx, `UPDATE users SET username = $4, username_fold = $5, password_hash = $6, email = $7,
			email_fold = $8, email_verified = $9, phone_number = $10, display_name = $11, given_name = $12,
			family_name = $13, enabled = $14, locked_until = $15, attributes = $16, version = version + 1,
			updated_at = $17
			WHERE tenant_id = $1 AND id = $2 AND ($3 = 0 OR version = $3)
			RETURNING version, created_at`,
			u.TenantID, u.ID, u.Version, u.Username, fold(u.Username), u.PasswordHash, u.Email,
			fold(u.Email), u.EmailVerified, u.PhoneNumber, u.DisplayName, u.GivenName,
			u.FamilyName, u.Enabled, ts(u.LockedUntil), attrs, u.UpdatedAt).Scan(&u.Version, timeDst(&u.CreatedAt))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var stored int64
		err = q.QueryRow(ctx, `SELECT version FROM users WHERE tenant_id = $1 AND id = $2`, u.TenantID, u.ID).Scan(&stored)
		if err != nil {
			return err
		}
		return fmt.Errorf("stored version is %d, not %d: %w", stored, u.Version, store.ErrVersionMismatch)
	})
	if err != nil {
		return store.User{}, s.fail("updating user", err)
	}
	return u, nil
}

// DeleteUser removes the user; foreign-key cascades remove its group
// memberships, role assignments, sessions and consents.
func (s *Store) DeleteUser(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM users WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	})
	if err != nil {
		return s.fail("deleting user", err)
	}
	return nil
}
