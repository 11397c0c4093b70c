package admin

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Account states a user JSON reports in "state".
const (
	stateEnabled   = "enabled"
	stateDisabled  = "disabled"
	stateLocked    = "locked"
	stateSuspended = "suspended"
)

// Kinds of the OAuth tokens a suspension revokes (builtin/oauth keeps them
// under these kinds).
var suspendRevokes = []string{"refresh", "access"}

// suspendInput is the body of POST /users/{id}/suspend.
type suspendInput struct {
	// Reason is recorded on the user and in the audit event; it is shown
	// to administrators, never to the user.
	Reason string `json:"reason"`
	// Until ends the suspension by itself; absent, it lasts until
	// DELETE /users/{id}/suspend.
	Until *time.Time `json:"until"`
}

// userState is the account state of u at now: disabled wins over
// suspended, which wins over locked.
func userState(u store.User, now time.Time) string {
	switch {
	case !u.Enabled:
		return stateDisabled
	case store.Suspended(u, now):
		return stateSuspended
	case u.LockedUntil.After(now):
		return stateLocked
	}
	return stateEnabled
}

// withSuspension adds the state and the suspension of u to j.
func withSuspension(j userJSON, u store.User, now time.Time) userJSON {
	j.State = userState(u, now)
	if s, ok := store.SuspensionOf(u); ok && s.Active(now) {
		j.SuspensionReason = s.Reason
		if !s.Until.IsZero() {
			t := s.Until.UTC()
			j.SuspendedUntil = &t
		}
	}
	if len(j.Attributes) > 0 {
		var reserved bool
		for k := range j.Attributes {
			reserved = reserved || store.IsSuspensionAttr(k)
		}
		if reserved {
			j.Attributes = maps.Clone(j.Attributes)
			maps.DeleteFunc(j.Attributes, func(k string, _ any) bool { return store.IsSuspensionAttr(k) })
		}
	}
	return j
}

// checkNoSuspension refuses attributes that name the reserved attributes
// of a suspension: only the suspend routes set them.
func checkNoSuspension(field string, attrs map[string]any) error {
	for k := range attrs {
		if store.IsSuspensionAttr(k) {
			return invalid(field, "%s is reserved; use /users/{id}/suspend", k)
		}
	}
	return nil
}

// keepSuspension copies the suspension attributes of old onto attrs, so
// that replacing a user's attributes does not lift a suspension.
func keepSuspension(old, attrs map[string]any) map[string]any {
	for k, v := range old {
		if store.IsSuspensionAttr(k) {
			if attrs == nil {
				attrs = map[string]any{}
			}
			attrs[k] = v
		}
	}
	return attrs
}

// suspendUser suspends a user: logins, the authorization endpoint and
// the device grant refuse the user until the suspension ends or is
// lifted; the user's SSO sessions end and the user's refresh and access
// tokens are revoked.
func (a *API) suspendUser(c *fiber.Ctx) error {
	var in suspendInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkText("reason", in.Reason, maxTextLen); err != nil {
		return err
	}
	now := a.d.Now()
	var until time.Time
	if in.Until != nil {
		until = in.Until.UTC()
	}
	return a.changeSuspension(c, "user.suspend", func(u *store.User) map[string]any {
		store.Suspend(u, now, until, in.Reason)
		detail := map[string]any{"reason": in.Reason}
		if !until.IsZero() {
			detail["until"] = until.Format(time.RFC3339)
		}
		return detail
	}, true)
}

// unsuspendUser lifts a user's suspension; lifting none is not an error.
func (a *API) unsuspendUser(c *fiber.Ctx) error {
	return a.changeSuspension(c, "user.unsuspend", func(u *store.User) map[string]any {
		return map[string]any{"was_suspended": store.Unsuspend(u)}
	}, false)
}

// changeSuspension applies change to the user of the request, retrying
// a concurrent change, audits it and answers the user; end ends the
// user's sessions and revokes the user's tokens.
func (a *API) changeSuspension(c *fiber.Ctx, action string, change func(*store.User) map[string]any, end bool) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if m, ok := a.dirOwns(c, c.Params("id")); ok {
		return fault.New(fault.CodeUnsupported, "users of user store domain "+m.Domain+" cannot be suspended in Latch; disable them instead")
	}
	for range 3 {
		u, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id"))
		if err != nil {
			return storeError("user", err)
		}
		detail := change(&u)
		u, err = a.d.Store.UpdateUser(ctx, u)
		if errors.Is(err, store.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return storeError("user", err)
		}
		if end {
			n, err := a.endAccess(c, t.ID, u.ID)
			if err != nil {
				return fault.New(fault.CodeInternal, "internal error").WithCause(err)
			}
			detail["sessions_ended"], detail["tokens_revoked"] = n[0], n[1]
		}
		a.audit(c, t.ID, event.Action(action), "user:"+u.ID, store.OutcomeSuccess, detail)
		return c.Status(fiber.StatusOK).JSON(toUserJSON(u))
	}
	return fault.New(fault.CodeConflict, "the user changed meanwhile; try again")
}

// endAccess ends the user's SSO sessions and revokes the user's refresh
// and access tokens; it returns how many sessions and tokens.
func (a *API) endAccess(c *fiber.Ctx, tenantID, userID string) ([2]int, error) {
	var n [2]int
	ctx := c.UserContext()
	s, err := a.d.Store.DeleteUserSessions(ctx, tenantID, userID)
	if err != nil {
		return n, fmt.Errorf("ending sessions: %w", err)
	}
	n[0] = s
	for _, kind := range suspendRevokes {
		k, err := a.d.Store.DeactivateBySubject(ctx, tenantID, kind, userID, "")
		if err != nil {
			return n, fmt.Errorf("revoking %s tokens: %w", kind, err)
		}
		n[1] += k
	}
	return n, nil
}
