package admin

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/store"
)

type auditJSON struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	RequestID string         `json:"request_id,omitempty"`
	Actor     string         `json:"actor"`
	Action    string         `json:"action"`
	Target    string         `json:"target,omitempty"`
	Outcome   string         `json:"outcome"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// queryAudit lists the tenant's audit events, newest first, filtered by
// ?actor= ?action= ?target= ?outcome= ?since= ?until= (RFC 3339 times).
func (a *API) queryAudit(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	q := store.AuditQuery{
		TenantID: tenantOf(c).ID,
		Actor:    c.Query("actor"),
		Action:   c.Query("action"),
		Target:   c.Query("target"),
		Outcome:  c.Query("outcome"),
		Page:     p,
	}
	for _, f := range []struct{ name, v string }{{"actor", q.Actor}, {"action", q.Action}, {"target", q.Target}, {"outcome", q.Outcome}} {
		if len(f.v) > maxNameLen*2 {
			return invalid(f.name, "must be at most %d bytes", maxNameLen*2)
		}
	}
	for _, f := range []struct {
		name string
		out  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := c.Query(f.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return invalid(f.name, "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
			}
			*f.out = t
		}
	}
	evs, next, err := a.d.Store.QueryAudit(c.UserContext(), q)
	if err != nil {
		return storeError("audit event", err)
	}
	out := make([]auditJSON, len(evs))
	for i, e := range evs {
		out[i] = auditJSON{ID: e.ID, Time: e.Time.UTC(), RequestID: e.RequestID, Actor: e.Actor,
			Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail}
	}
	return c.JSON(newList(out, next))
}
