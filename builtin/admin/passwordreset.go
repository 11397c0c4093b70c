package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// PasswordPolicy applies the tenant's password policy to passwords the
// admin API sets (builtin/selfservice implements it).
type PasswordPolicy interface {
	// CheckPassword refuses pw for u with a fault.InvalidRequest on field
	// "password" listing the rules it breaks.
	CheckPassword(ctx context.Context, tenantID string, u store.User, pw string) error
	// RecordPassword makes hash u's password, keeping the history and
	// change time the policy needs.
	RecordPassword(ctx context.Context, tenantID string, u *store.User, hash string)
}

// attrForceReset is the user attribute that makes the next login set a
// new password (builtin/selfservice.AttrForceReset).
const attrForceReset = "latch.force_password_reset"

// checkPolicy checks a password the request sets (nil: none) under the
// tenant's policy, before anything is hashed.
func (a *API) checkPolicy(ctx context.Context, u store.User, pw *string) error {
	if pw == nil || a.d.Passwords == nil {
		return nil
	}
	return a.d.Passwords.CheckPassword(ctx, u.TenantID, u, *pw)
}

// recordPassword moves a password applyUser hashed onto u through the
// policy (history, change time); before is u as it was stored.
func (a *API) recordPassword(ctx context.Context, before store.User, u *store.User, pw *string) {
	if pw == nil || a.d.Passwords == nil {
		return
	}
	hash := u.PasswordHash
	u.PasswordHash = before.PasswordHash
	a.d.Passwords.RecordPassword(ctx, u.TenantID, u, hash)
}

// forcePasswordReset marks a user so that the next login requires a new
// password before it completes; the user's sessions end.
func (a *API) forcePasswordReset(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	for range 3 {
		u, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id"))
		if err != nil {
			return storeError("user", err)
		}
		if u.Attributes == nil {
			u.Attributes = map[string]any{}
		}
		u.Attributes[attrForceReset] = true
		u, err = a.d.Store.UpdateUser(ctx, u)
		if errors.Is(err, store.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return storeError("user", err)
		}
		if _, err := a.d.Store.DeleteUserSessions(ctx, t.ID, u.ID); err != nil {
			return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("ending sessions: %w", err))
		}
		a.audit(c, t.ID, event.Action("user.force_password_reset"), "user:"+u.ID, store.OutcomeSuccess, nil)
		return c.Status(fiber.StatusOK).JSON(toUserJSON(u))
	}
	return fault.New(fault.CodeConflict, "the user changed meanwhile; try again")
}
