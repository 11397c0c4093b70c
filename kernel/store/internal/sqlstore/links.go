package sqlstore

import (
	"context"
	"unicode/utf8"

	"github.com/latchid/latch/kernel/store"
)

const linkCols = `tenant_id, user_id, idp, subject, email, created_at`

// Bounds of a link's fields.
const (
	maxLinkIDP     = 128
	maxLinkSubject = 512
	maxLinkEmail   = 320
)

func scanLink(r Row) (store.Link, error) {
	var l store.Link
	err := r.Scan(&l.TenantID, &l.UserID, &l.IdP, &l.Subject, &l.Email, timeDst(&l.CreatedAt))
	return l, err
}

func checkLink(l store.Link) error {
	if err := required("tenant id", l.TenantID, "user id", l.UserID, "idp", l.IdP, "subject", l.Subject); err != nil {
		return err
	}
	switch {
	case len(l.IdP) > maxLinkIDP:
		return invalid("idp is longer than %d bytes", maxLinkIDP)
	case len(l.Subject) > maxLinkSubject:
		return invalid("subject is longer than %d bytes", maxLinkSubject)
	case len(l.Email) > maxLinkEmail:
		return invalid("email is longer than %d bytes", maxLinkEmail)
	case !utf8.ValidString(l.IdP) || !utf8.ValidString(l.Subject) || !utf8.ValidString(l.Email):
		return invalid("link fields must be UTF-8")
	}
	return nil
}

// CreateLink records l; CreatedAt defaults to now.
func (s *Store) CreateLink(ctx context.Context, l store.Link) (store.Link, error) {
	if err := checkLink(l); err != nil {
		return store.Link{}, s.fail("creating link", err)
	}
	l.CreatedAt = orNow(l.CreatedAt)
	err := s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "users", "user", l.TenantID, l.UserID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO user_links (`+linkCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			l.TenantID, l.UserID, l.IdP, l.Subject, l.Email, l.CreatedAt)
		return err
	})
	if err != nil {
		return store.Link{}, s.fail("creating link", err)
	}
	return l, nil
}

// FindLink returns the link of an external identity.
func (s *Store) FindLink(ctx context.Context, tenantID, idp, subject string) (store.Link, error) {
	l, err := scanLink(s.read().QueryRow(ctx, `SELECT `+linkCols+` FROM user_links
		WHERE tenant_id = $1 AND idp = $2 AND subject = $3`, tenantID, idp, subject))
	if err != nil {
		return store.Link{}, s.fail("finding link", err)
	}
	return l, nil
}

// ListLinks lists a user's links, ordered by idp then subject.
func (s *Store) ListLinks(ctx context.Context, tenantID, userID string) ([]store.Link, error) {
	ls, err := collect(ctx, s.read(), scanLink, `SELECT `+linkCols+` FROM user_links
		WHERE tenant_id = $1 AND user_id = $2 ORDER BY idp, subject`, tenantID, userID)
	if err != nil {
		return nil, s.fail("listing links", err)
	}
	return ls, nil
}

// DeleteLink removes the link of an external identity.
func (s *Store) DeleteLink(ctx context.Context, tenantID, idp, subject string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM user_links WHERE tenant_id = $1 AND idp = $2 AND subject = $3`,
			tenantID, idp, subject))
	})
	if err != nil {
		return s.fail("deleting link", err)
	}
	return nil
}
