package sqlstore

import (
	"context"

	"github.com/latchid/latch/kernel/store"
)

const consentCols = `tenant_id, user_id, client_id, scopes, granted_at, expires_at`

func scanConsent(r Row) (store.Consent, error) {
	var c store.Consent
	err := r.Scan(&c.TenantID, &c.UserID, &c.ClientID, jsonDst(&c.Scopes), timeDst(&c.GrantedAt), timeDst(&c.ExpiresAt))
	return c, err
}

// PutConsent creates or replaces the consent. GrantedAt defaults to now.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	if err := checkConsent(c); err != nil {
		return s.fail("putting consent", err)
	}
	scopes, err := jsonArg(c.Scopes)
	if err != nil {
		return s.fail("putting consent", err)
	}
	err = s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "users", "user", c.TenantID, c.UserID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO consents (`+consentCols+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, user_id, client_id)
			DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
			c.TenantID, c.UserID, c.ClientID, scopes, orNow(c.GrantedAt), ts(c.ExpiresAt))
		return err
	})
	if err != nil {
		return s.fail("putting consent", err)
	}
	return nil
}

// GetConsent returns the consent unless it has expired.
func (s *Store) GetConsent(ctx context.Context, tenantID, userID, clientID string) (store.Consent, error) {
	c, err := scanConsent(s.read().QueryRow(ctx, `SELECT `+consentCols+` FROM consents
		WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND `+notExpired("$4"), tenantID, userID, clientID, now()))
	if err != nil {
		return store.Consent{}, s.fail("getting consent", err)
	}
	return c, nil
}

// ListUserConsents lists the user's consents that have not expired, ordered
// by client id.
func (s *Store) ListUserConsents(ctx context.Context, tenantID, userID string) ([]store.Consent, error) {
	cs, err := collect(ctx, s.read(), scanConsent, `SELECT `+consentCols+` FROM consents
		WHERE tenant_id = $1 AND user_id = $2 AND `+notExpired("$3")+` ORDER BY client_id`, tenantID, userID, now())
	if err != nil {
		return nil, s.fail("listing user consents", err)
	}
	return cs, nil
}

// DeleteConsent removes the consent.
func (s *Store) DeleteConsent(ctx context.Context, tenantID, userID, clientID string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3`,
			tenantID, userID, clientID))
	})
	if err != nil {
		return s.fail("deleting consent", err)
	}
	return nil
}
