package admin

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// ActionSessionTerminate is the audit action of an administrator ending
// SSO sessions.
const ActionSessionTerminate event.Action = "session.terminate"

// sessionJSON is an SSO session as the admin API shows it; the cookie's
// secret is never part of it.
type sessionJSON struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	AuthTime   time.Time `json:"auth_time"`
	ACR        string    `json:"acr,omitempty"`
	AMR        []string  `json:"amr"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func toSessionJSON(s store.Session) sessionJSON {
	amr := s.AMR
	if amr == nil {
		amr = []string{}
	}
	return sessionJSON{
		ID: s.ID, UserID: s.UserID, AuthTime: s.AuthTime, ACR: s.ACR, AMR: amr, IP: s.IP, UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt,
	}
}

// listUserSessions lists a user's live SSO sessions.
func (a *API) listUserSessions(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	if _, err := a.d.Store.GetUser(ctx, t.ID, c.Params("id")); err != nil {
		return storeError("user", err)
	}
	ss, err := a.d.Store.ListUserSessions(ctx, t.ID, c.Params("id"))
	if err != nil {
		return storeError("session", err)
	}
	out := make([]sessionJSON, len(ss))
	for i, s := range ss {
		out[i] = toSessionJSON(s)
	}
	return c.JSON(newList(out, ""))
}

// deleteUserSessions ends every SSO session of a user (sign out
// everywhere). Tokens already issued stay valid until they expire or are
// revoked.
func (a *API) deleteUserSessions(c *fiber.Ctx) error {
	t := tenantOf(c)
	ctx := c.UserContext()
	id := c.Params("id")
	if _, err := a.d.Store.GetUser(ctx, t.ID, id); err != nil {
		return storeError("user", err)
	}
	n, err := a.d.Store.DeleteUserSessions(ctx, t.ID, id)
	if err != nil {
		return storeError("session", err)
	}
	a.audit(c, t.ID, ActionSessionTerminate, "user:"+id, store.OutcomeSuccess, map[string]any{"sessions": n})
	return c.SendStatus(fiber.StatusNoContent)
}

// getSession returns one SSO session.
func (a *API) getSession(c *fiber.Ctx) error {
	s, err := a.d.Store.GetSession(c.UserContext(), tenantOf(c).ID, c.Params("id"))
	if err != nil {
		return storeError("session", err)
	}
	return c.JSON(toSessionJSON(s))
}

// deleteSession ends one SSO session.
func (a *API) deleteSession(c *fiber.Ctx) error {
	t := tenantOf(c)
	id := c.Params("id")
	if err := a.d.Store.DeleteSession(c.UserContext(), t.ID, id); err != nil {
		return storeError("session", err)
	}
	a.audit(c, t.ID, ActionSessionTerminate, "session:"+id, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}
