package scim

import (
	"context"
	"fmt"
	"time"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// PasswordPolicy applies the tenant's password policy to passwords SCIM
// sets (builtin/selfservice implements it).
type PasswordPolicy interface {
	// CheckPassword refuses pw for u with an error whose message lists
	// the rules it breaks.
	CheckPassword(ctx context.Context, tenantID string, u store.User, pw string) error
	// RecordPassword makes hash u's password, keeping the history and
	// change time the policy needs.
	RecordPassword(ctx context.Context, tenantID string, u *store.User, hash string)
}

// policyTimeout bounds the tenant look-up (and breach check) of one
// password check.
const policyTimeout = 10 * time.Second

// checkPolicy refuses a password the tenant's policy does not accept, as
// a SCIM invalidValue error naming every rule broken.
func (s *Service) checkPolicy(u store.User, pw string) *Error {
	if s.d.Passwords == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), policyTimeout)
	defer cancel()
	if err := s.d.Passwords.CheckPassword(ctx, u.TenantID, u, pw); err != nil {
		if f := fault.From(err); f.Code == fault.CodeInvalidRequest {
			return badRequest(ErrTypeInvalidValue, "password: %s", f.Message)
		}
		return internal(fmt.Errorf("checking password policy: %w", err))
	}
	return nil
}

// recordPassword sets u's password hash, through the policy when there is
// one.
func (s *Service) recordPassword(u *store.User, hash string) {
	if s.d.Passwords == nil {
		u.PasswordHash = hash
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), policyTimeout)
	defer cancel()
	s.d.Passwords.RecordPassword(ctx, u.TenantID, u, hash)
}
