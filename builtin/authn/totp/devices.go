package totp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// CredentialID is the id of a user's one TOTP enrolment per instance.
const CredentialID = "totp"

// ListCredentials implements authn.CredentialManager: a user has at most
// one TOTP enrolment per instance. It says when it was enrolled, when a
// code last worked and, in Details["recovery_codes_left"], how many
// recovery codes are unused. The secret never leaves the store.
func (a *Authenticator) ListCredentials(ctx context.Context, tenant, subject string) ([]authn.Credential, error) {
	rec, enrolled, err := a.load(ctx, tenant, subject)
	if err != nil || !enrolled {
		return nil, err
	}
	c := authn.Credential{ID: CredentialID, Authenticator: a.name, Type: "totp", Nickname: a.Issuer, CreatedAt: rec.Enrolled,
		Details: map[string]any{"recovery_codes_left": len(rec.Recovery)}}
	if rec.LastStep > 0 {
		c.LastUsedAt = time.Unix(rec.LastStep*period, 0).UTC()
	}
	return []authn.Credential{c}, nil
}

// DeleteCredential implements authn.CredentialManager: it deletes the
// user's enrolment with its recovery codes; the user's next login that
// reaches this step enrols again. A user without one is store.ErrNotFound.
func (a *Authenticator) DeleteCredential(ctx context.Context, tenant, subject, id string) error {
	if id != CredentialID {
		return fmt.Errorf("deleting TOTP enrolment %q: %w", id, store.ErrNotFound)
	}
	_, err := a.kv.KVGet(ctx, a.name, tenant, a.kvKey(subject))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("deleting TOTP enrolment: %w", store.ErrNotFound)
	case err != nil:
		return fault.Unavailable.WithCause(fmt.Errorf("loading TOTP enrolment: %w", err))
	}
	if err := a.kv.KVDelete(ctx, a.name, tenant, a.kvKey(subject)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fault.Unavailable.WithCause(fmt.Errorf("removing TOTP enrolment: %w", err))
	}
	return nil
}

var _ authn.CredentialManager = (*Authenticator)(nil)
