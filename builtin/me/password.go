package me

import (
	"context"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// Passwords applies the tenant's password policy to a new password
// (builtin/selfservice's Service implements it).
type Passwords interface {
	// SetPassword checks pw under the tenant's policy and its history and
	// makes it the password of the kernel store's user userID; with
	// revoke, the user's sessions end. A refused password is a
	// fault.InvalidRequest on field "password" whose cause is a
	// *password.PolicyError.
	SetPassword(ctx context.Context, tenantID, userID, pw string, revoke bool) error
	// CheckPassword refuses pw for u in the same way, without storing it
	// (for the users of stores the kernel store does not hold).
	CheckPassword(ctx context.Context, tenantID string, u store.User, pw string) error
}

// TokenRevoker revokes the OAuth tokens a tenant issued to a user
// (builtin/oauth's Provider implements it).
type TokenRevoker interface {
	// RevokeUserTokens revokes the user's refresh and access tokens,
	// every client's when clientID is empty, and returns how many.
	RevokeUserTokens(ctx context.Context, tenantID, userID, clientID string) (int, error)
}

// passwordChange is the body of POST /api/me/password.
type passwordChange struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

// wellFormed reports whether the body passes the checks changePassword
// makes before it asks any store; one that does not is left to it, so
// that it answers the input error.
func (in passwordChange) wellFormed() bool {
	return in.Current != "" && in.New != in.Current && len(in.New) <= password.MaxLength &&
		utf8.RuneCountInString(in.New) >= MinPasswordLength
}

// postPassword answers POST /api/me/password. The new password must pass
// the tenant's password policy (settings.password_policy): for an account
// of the tenant's own database the policy's history too, through
// Deps.Passwords, which also keeps that history; for an account of another
// store (a directory) the policy's rules, before that store changes it.
// The current password is checked first by the user store that keeps the
// account (whose lockout counts a wrong one). Afterwards the user's other
// sessions end and the refresh and access tokens issued to them are
// revoked (Deps.Tokens).
func (a *API) postPassword(c *fiber.Ctx) error {
	var in passwordChange
	if err := decodeStrict(c, &in); err != nil {
		return err
	}
	if a.d.Passwords != nil && in.wellFormed() {
		s, err := a.findUser(c)
		if err != nil {
			return err
		}
		if keptByKernel(s) {
			return a.setKernelPassword(c, s, in)
		}
		t, p := tenantOf(c), principalOf(c)
		u := store.User{ID: p.UserID, TenantID: t.ID, Username: s.user.Username}
		if err := a.d.Passwords.CheckPassword(c.UserContext(), t.ID, u, in.New); err != nil {
			return a.passwordRefused(c, err)
		}
	}
	if err := a.changePassword(c); err != nil {
		return err
	}
	if c.Response().StatusCode() == fiber.StatusOK {
		if _, err := a.revokeTokens(c, ""); err != nil {
			return err
		}
	}
	return nil
}

// keptByKernel reports whether the account is one of the kernel store's
// users that Passwords may change: the tenant's database store, not
// configured read-only.
func keptByKernel(s userStore) bool {
	if s.inst.ID() != local.ID {
		return false
	}
	var cfg struct {
		ReadOnly bool `json:"read_only"`
	}
	if raw := s.inst.Config(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return false
		}
	}
	return !cfg.ReadOnly
}

// setKernelPassword changes the password of an account of the tenant's
// database through Deps.Passwords.
func (a *API) setKernelPassword(c *fiber.Ctx, s userStore, in passwordChange) error {
	if err := a.confirmPassword(c, in.Current, ActionPasswordChange); err != nil {
		return err
	}
	t, p := tenantOf(c), principalOf(c)
	// Not revoking here: the calling browser's session stays (endSessions).
	if err := a.d.Passwords.SetPassword(c.UserContext(), t.ID, s.user.ID, in.New, false); err != nil {
		return a.passwordRefused(c, err)
	}
	ended := a.endSessions(c, p.UserID)
	revoked, err := a.revokeTokens(c, "")
	if err != nil {
		return err
	}
	a.auditSelf(c, ActionPasswordChange, event.Ref("user", p.UserID), event.OutcomeSuccess, map[string]any{"sessions_ended": ended, "tokens_revoked": revoked})
	return c.Status(fiber.StatusOK).JSON(fiber.Map{"sessions_ended": ended})
}

// passwordRefused answers a new password the policy (or the tenant's
// invalid policy) refused as an invalid_request on new_password, audited;
// other errors pass through.
func (a *API) passwordRefused(c *fiber.Ctx, err error) error {
	f := fault.From(err)
	switch {
	case f.Code == fault.CodeInvalidRequest:
		a.auditSelf(c, ActionPasswordChange, event.Ref("user", principalOf(c).UserID), event.OutcomeDenied, map[string]any{"reason": "password policy"})
		return f.WithField("new_password")
	case errors.Is(err, store.ErrNotFound):
		return fault.New(fault.CodeUnauthenticated, "the signed-in user no longer exists")
	case f.Code == fault.CodeConflict:
		return f
	default:
		return fault.Unavailable.WithMessage("the password could not be changed").WithCause(err)
	}
}

// revokeTokens revokes the refresh and access tokens issued to the
// signed-in user (for clientID only, when not empty) and returns how many.
// A failure is an unavailable fault: the caller learns that tokens may
// still be live and can try again.
func (a *API) revokeTokens(c *fiber.Ctx, clientID string) (int, error) {
	if a.d.Tokens == nil {
		return 0, nil
	}
	n, err := a.d.Tokens.RevokeUserTokens(c.UserContext(), tenantOf(c).ID, principalOf(c).UserID, clientID)
	if err != nil {
		return n, fault.Unavailable.WithMessage("the tokens issued to you could not be revoked; try again").WithCause(err)
	}
	return n, nil
}
