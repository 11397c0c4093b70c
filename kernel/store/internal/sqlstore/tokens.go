package sqlstore

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

//nolint:gosec // G101: a list of column names, not a credential.
const tokenCols = `kind, token_key, tenant_id, request_id, client_id, subject, session_id, active, data, created_at, expires_at`

func scanToken(r Row) (store.Token, error) {
	var t store.Token
	err := r.Scan(&t.Kind, &t.Key, &t.TenantID, &t.RequestID, &t.ClientID, &t.Subject, &t.SessionID, &t.Active,
		&t.Data, timeDst(&t.CreatedAt), timeDst(&t.ExpiresAt))
	return t, err
}

// CreateToken stores t. CreatedAt defaults to now; a zero ExpiresAt never
// expires.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	if err := checkToken(t); err != nil {
		return s.fail("creating token", err)
	}
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			t.Kind, t.Key, t.TenantID, t.RequestID, t.ClientID, t.Subject, t.SessionID, t.Active,
			t.Data, orNow(t.CreatedAt), ts(t.ExpiresAt))
		return err
	})
	if err != nil {
		return s.fail("creating token", err)
	}
	return nil
}

// GetToken returns the token unless it has expired.
func (s *Store) GetToken(ctx context.Context, tenantID, kind, key string) (store.Token, error) {
	t, err := scanToken(s.read().QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens
		WHERE tenant_id = $1 AND kind = $2 AND token_key = $3 AND `+notExpired("$4"), tenantID, kind, key, now()))
	if err != nil {
		return store.Token{}, s.fail("getting token", err)
	}
	return t, nil
}

// DeleteToken removes the token.
func (s *Store) DeleteToken(ctx context.Context, tenantID, kind, key string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM tokens WHERE tenant_id = $1 AND kind = $2 AND token_key = $3`,
			tenantID, kind, key))
	})
	if err != nil {
		return s.fail("deleting token", err)
	}
	return nil
}

// DeactivateToken marks a token that has not expired inactive.
func (s *Store) DeactivateToken(ctx context.Context, tenantID, kind, key string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `UPDATE tokens SET active = $4
			WHERE tenant_id = $1 AND kind = $2 AND token_key = $3 AND `+notExpired("$5"), tenantID, kind, key, false, now()))
	})
	if err != nil {
		return s.fail("deactivating token", err)
	}
	return nil
}

// DeactivateByRequestID marks every active, unexpired token of the kind
// issued for the request inactive and returns how many changed.
func (s *Store) DeactivateByRequestID(ctx context.Context, tenantID, kind, requestID string) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `UPDATE tokens SET active = $4
			WHERE tenant_id = $1 AND kind = $2 AND request_id = $3 AND active = $5 AND `+notExpired("$6"),
			tenantID, kind, requestID, false, true, now())
		return err
	})
	if err != nil {
		return 0, s.fail("deactivating tokens by request id", err)
	}
	return int(n), nil
}

// DeleteByRequestID removes every token of the kind issued for the request
// and returns how many it removed.
func (s *Store) DeleteByRequestID(ctx context.Context, tenantID, kind, requestID string) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM tokens WHERE tenant_id = $1 AND kind = $2 AND request_id = $3`,
			tenantID, kind, requestID)
		return err
	})
	if err != nil {
		return 0, s.fail("deleting tokens by request id", err)
	}
	return int(n), nil
}

// DeleteExpiredTokens removes tokens that expired before t.
func (s *Store) DeleteExpiredTokens(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM tokens WHERE expires_at < $1`, norm(t))
		return err
	})
	if err != nil {
		return 0, s.fail("deleting expired tokens", err)
	}
	return int(n), nil
}
