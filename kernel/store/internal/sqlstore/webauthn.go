package sqlstore

import (
	"context"
	"unicode/utf8"

	"github.com/latchid/latch/kernel/store"
)

const webauthnCols = `tenant_id, id, user_id, authenticator, public_key, attestation_type, attestation_format,
	aaguid, sign_count, clone_warning, transports, attachment, user_verified, backup_eligible, backup_state,
	discoverable, nickname, created_at, last_used_at`

// Bounds of a WebAuthn credential's fields.
const (
	maxCredentialID        = 1366 // base64url of 1023 bytes
	maxCredentialKey       = 2048
	maxCredentialName      = 128
	maxCredentialNickname  = 64
	maxCredentialShortText = 64
	maxCredentialTransport = 16
)

func scanWebAuthn(r Row) (store.WebAuthnCredential, error) {
	var (
		c     store.WebAuthnCredential
		count int64
	)
	err := r.Scan(&c.TenantID, &c.ID, &c.UserID, &c.Authenticator, &c.PublicKey, &c.AttestationType, &c.AttestationFormat,
		&c.AAGUID, &count, &c.CloneWarning, jsonDst(&c.Transports), &c.Attachment, &c.UserVerified, &c.BackupEligible,
		&c.BackupState, &c.Discoverable, &c.Nickname, timeDst(&c.CreatedAt), timeDst(&c.LastUsedAt))
	c.SignCount = uint32(count) //nolint:gosec // G115: written from a uint32.
	return c, err
}

func checkWebAuthn(c store.WebAuthnCredential) error {
	if err := required("tenant id", c.TenantID, "user id", c.UserID, "credential id", c.ID, "authenticator", c.Authenticator); err != nil {
		return err
	}
	short := []string{c.AttestationType, c.AttestationFormat, c.AAGUID, c.Attachment}
	switch {
	case len(c.ID) > maxCredentialID:
		return invalid("credential id is longer than %d bytes", maxCredentialID)
	case len(c.PublicKey) == 0 || len(c.PublicKey) > maxCredentialKey:
		return invalid("public key must be 1..%d bytes", maxCredentialKey)
	case len(c.Authenticator) > maxCredentialName:
		return invalid("authenticator is longer than %d bytes", maxCredentialName)
	case utf8.RuneCountInString(c.Nickname) > maxCredentialNickname || !utf8.ValidString(c.Nickname):
		return invalid("nickname must be UTF-8 of at most %d characters", maxCredentialNickname)
	case len(c.Transports) > maxCredentialTransport:
		return invalid("more than %d transports", maxCredentialTransport)
	}
	for _, s := range append(short, c.Transports...) {
		if len(s) > maxCredentialShortText || !utf8.ValidString(s) {
			return invalid("credential attributes must be UTF-8 of at most %d bytes", maxCredentialShortText)
		}
	}
	return nil
}

// CreateWebAuthnCredential records c; CreatedAt defaults to now.
func (s *Store) CreateWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) (store.WebAuthnCredential, error) {
	if err := checkWebAuthn(c); err != nil {
		return store.WebAuthnCredential{}, s.fail("creating webauthn credential", err)
	}
	c.CreatedAt = orNow(c.CreatedAt)
	c.LastUsedAt = norm(c.LastUsedAt)
	transports, err := jsonArg(c.Transports)
	if err != nil {
		return store.WebAuthnCredential{}, s.fail("creating webauthn credential", err)
	}
	err = s.write(ctx, func(q Querier) error {
		if err := checkRef(ctx, q, "users", "user", c.TenantID, c.UserID); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO webauthn_credentials (`+webauthnCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			c.TenantID, c.ID, c.UserID, c.Authenticator, c.PublicKey, c.AttestationType, c.AttestationFormat,
			c.AAGUID, int64(c.SignCount), c.CloneWarning, transports, c.Attachment, c.UserVerified, c.BackupEligible,
			c.BackupState, c.Discoverable, c.Nickname, c.CreatedAt, ts(c.LastUsedAt))
		return err
	})
	if err != nil {
		return store.WebAuthnCredential{}, s.fail("creating webauthn credential", err)
	}
	return c, nil
}

// GetWebAuthnCredential returns a credential by id.
func (s *Store) GetWebAuthnCredential(ctx context.Context, tenantID, id string) (store.WebAuthnCredential, error) {
	c, err := scanWebAuthn(s.read().QueryRow(ctx, `SELECT `+webauthnCols+` FROM webauthn_credentials
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return store.WebAuthnCredential{}, s.fail("getting webauthn credential", err)
	}
	return c, nil
}

// ListWebAuthnCredentials lists a user's credentials, oldest first.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, tenantID, userID string) ([]store.WebAuthnCredential, error) {
	cs, err := collect(ctx, s.read(), scanWebAuthn, `SELECT `+webauthnCols+` FROM webauthn_credentials
		WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id`, tenantID, userID)
	if err != nil {
		return nil, s.fail("listing webauthn credentials", err)
	}
	return cs, nil
}

// UseWebAuthnCredential records a successful assertion.
func (s *Store) UseWebAuthnCredential(ctx context.Context, tenantID, id string, u store.WebAuthnUse) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `UPDATE webauthn_credentials
			SET sign_count = $3, clone_warning = $4, backup_state = $5, last_used_at = $6
			WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, int64(u.SignCount), u.CloneWarning, u.BackupState, orNow(u.UsedAt)))
	})
	if err != nil {
		return s.fail("recording webauthn credential use", err)
	}
	return nil
}

// DeleteWebAuthnCredential removes a user's credential.
func (s *Store) DeleteWebAuthnCredential(ctx context.Context, tenantID, userID, id string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2 AND id = $3`,
			tenantID, userID, id))
	})
	if err != nil {
		return s.fail("deleting webauthn credential", err)
	}
	return nil
}
