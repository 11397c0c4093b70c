package sqlstore

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

const sessionCols = `id, tenant_id, user_id, auth_time, acr, amr, ip, user_agent, data, created_at, last_seen_at, expires_at`

func scanSession(r Row) (store.Session, error) {
	var s store.Session
	err := r.Scan(&s.ID, &s.TenantID, &s.UserID, timeDst(&s.AuthTime), &s.ACR, jsonDst(&s.AMR), &s.IP, &s.UserAgent,
		jsonDst(&s.Data), timeDst(&s.CreatedAt), timeDst(&s.LastSeenAt), timeDst(&s.ExpiresAt))
	return s, err
}

// CreateSession stores se with a new id (kept when set). CreatedAt defaults
// to now and LastSeenAt to CreatedAt; a zero ExpiresAt never expires.
func (s *Store) CreateSession(ctx context.Context, se store.Session) (store.Session, error) {
	if err := checkSession(se); err != nil {
		return store.Session{}, s.fail("creating session", err)
	}
	amr, err := jsonArg(se.AMR)
	if err != nil {
		return store.Session{}, s.fail("creating session", err)
	}
	data, err := jsonArg(se.Data)
	if err != nil {
		return store.Session{}, s.fail("creating session", err)
	}
	se.ID = orNewID(se.ID)
	se.AuthTime = norm(se.AuthTime)
	se.CreatedAt = orNow(se.CreatedAt)
	if se.LastSeenAt.IsZero() {
		se.LastSeenAt = se.CreatedAt
	}
	se.LastSeenAt = norm(se.LastSeenAt)
	se.ExpiresAt = norm(se.ExpiresAt)
	err = s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "users", "user", se.TenantID, se.UserID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			se.ID, se.TenantID, se.UserID, ts(se.AuthTime), se.ACR, amr, se.IP, se.UserAgent, data,
			se.CreatedAt, se.LastSeenAt, ts(se.ExpiresAt))
		return err
	})
	if err != nil {
		return store.Session{}, s.fail("creating session", err)
	}
	return se, nil
}

// GetSession returns the session with the id unless it has expired.
func (s *Store) GetSession(ctx context.Context, tenantID, id string) (store.Session, error) {
	se, err := scanSession(s.read().QueryRow(ctx, `SELECT `+sessionCols+` FROM sessions
		WHERE tenant_id = $1 AND id = $2 AND `+notExpired("$3"), tenantID, id, now()))
	if err != nil {
		return store.Session{}, s.fail("getting session", err)
	}
	return se, nil
}

// TouchSession sets LastSeenAt and ExpiresAt of a session that has not
// expired.
func (s *Store) TouchSession(ctx context.Context, tenantID, id string, seen, expires time.Time) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `UPDATE sessions SET last_seen_at = $3, expires_at = $4
			WHERE tenant_id = $1 AND id = $2 AND `+notExpired("$5"), tenantID, id, orNow(seen), ts(expires), now()))
	})
	if err != nil {
		return s.fail("touching session", err)
	}
	return nil
}

// ListUserSessions lists the user's sessions that have not expired,
// ordered by id.
func (s *Store) ListUserSessions(ctx context.Context, tenantID, userID string) ([]store.Session, error) {
	ss, err := collect(ctx, s.read(), scanSession, `SELECT `+sessionCols+` FROM sessions
		WHERE tenant_id = $1 AND user_id = $2 AND `+notExpired("$3")+` ORDER BY id`, tenantID, userID, now())
	if err != nil {
		return nil, s.fail("listing user sessions", err)
	}
	return ss, nil
}

// DeleteSession removes the session.
func (s *Store) DeleteSession(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	})
	if err != nil {
		return s.fail("deleting session", err)
	}
	return nil
}

// DeleteUserSessions removes every session of the user and returns how many
// it removed.
func (s *Store) DeleteUserSessions(ctx context.Context, tenantID, userID string) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID)
		return err
	})
	if err != nil {
		return 0, s.fail("deleting user sessions", err)
	}
	return int(n), nil
}

// DeleteExpiredSessions removes sessions that expired before t.
func (s *Store) DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, norm(t))
		return err
	})
	if err != nil {
		return 0, s.fail("deleting expired sessions", err)
	}
	return int(n), nil
}
