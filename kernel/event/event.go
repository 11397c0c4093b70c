// Package event carries audit events: who did what to what, in which tenant,
// with what outcome. Code on the request path publishes typed events on a
// Bus, which returns at once and fans them out asynchronously to sinks (a
// structured log, the store's audit log, later a SIEM). The bus never blocks
// a request: when a sink's queue is full, the event is dropped for that sink
// and counted.
//
// Querying is the store's job: store.AuditLog.QueryAudit, or Query here,
// which returns Events.
package event

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// Action is a dotted verb naming what happened.
type Action string

// Actions the foundation emits. Extensions and later features add their
// own, in the same "<object>.<verb>" form.
const (
	UserCreate Action = "user.create"
	UserUpdate Action = "user.update"
	UserDelete Action = "user.delete"

	GroupCreate       Action = "group.create"
	GroupUpdate       Action = "group.update"
	GroupDelete       Action = "group.delete"
	GroupMemberAdd    Action = "group.member.add"
	GroupMemberRemove Action = "group.member.remove"

	RoleCreate   Action = "role.create"
	RoleUpdate   Action = "role.update"
	RoleDelete   Action = "role.delete"
	RoleAssign   Action = "role.assign"
	RoleUnassign Action = "role.unassign"

	ClientCreate       Action = "client.create"
	ClientUpdate       Action = "client.update"
	ClientDelete       Action = "client.delete"
	ClientSecretRotate Action = "client.secret.rotate"

	TenantCreate Action = "tenant.create"
	TenantUpdate Action = "tenant.update"
	TenantDelete Action = "tenant.delete"

	// KeyRotate: a tenant's signing keys were rotated.
	KeyRotate Action = "key.rotate"
	// AdminAuth: an admin API request failed authentication (recorded with
	// OutcomeFailure or OutcomeDenied).
	AdminAuth Action = "admin.auth"
	// ServerStart: a server node started; Detail holds its version.
	ServerStart Action = "server.start"
	// ServerStop: a server node shut down.
	ServerStop Action = "server.stop"
)

// Outcomes, the same strings as the store's.
const (
	OutcomeSuccess = store.OutcomeSuccess
	OutcomeFailure = store.OutcomeFailure
	OutcomeDenied  = store.OutcomeDenied
	OutcomeError   = store.OutcomeError
)

// ActorSystem is the actor of events the server causes itself.
const ActorSystem = "system"

// Ref names an actor or a target: Ref("user", "u-42") is "user:u-42",
// Ref("client", "svc-a") is "client:svc-a".
func Ref(kind, id string) string {
	return kind + ":" + id
}

// Event is one audit event.
type Event struct {
	// ID identifies the event; Publish fills it when empty.
	ID string
	// Tenant is the id of the tenant the event belongs to; empty for
	// server-wide events.
	Tenant string
	// Time is when it happened; Publish fills it when zero.
	Time time.Time
	// RequestID ties the event to the request that caused it.
	RequestID string
	// Actor is who acted (see Ref and ActorSystem).
	Actor string
	// Action is what was done.
	Action Action
	// Target is what it was done to (see Ref).
	Target string
	// Outcome is one of the Outcome… constants.
	Outcome string
	// Detail holds more facts. Never put secrets (passwords, tokens) in
	// it. Sinks may run after Publish returns, so do not change the map
	// once published.
	Detail map[string]any
}

// Record returns the event in the store's form.
func (e Event) Record() store.AuditEvent {
	return store.AuditEvent{
		ID:        e.ID,
		TenantID:  e.Tenant,
		Time:      e.Time,
		RequestID: e.RequestID,
		Actor:     e.Actor,
		Action:    string(e.Action),
		Target:    e.Target,
		Outcome:   e.Outcome,
		Detail:    maps.Clone(e.Detail),
	}
}

// FromRecord returns a stored event as an Event.
func FromRecord(r store.AuditEvent) Event {
	return Event{
		ID:        r.ID,
		Tenant:    r.TenantID,
		Time:      r.Time,
		RequestID: r.RequestID,
		Actor:     r.Actor,
		Action:    Action(r.Action),
		Target:    r.Target,
		Outcome:   r.Outcome,
		Detail:    r.Detail,
	}
}

// Query returns one page of stored events matching q, newest first, and the
// cursor of the next page (see store.AuditQuery).
func Query(ctx context.Context, log store.AuditLog, q store.AuditQuery) ([]Event, string, error) {
	recs, next, err := log.QueryAudit(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("querying audit events: %w", err)
	}
	out := make([]Event, len(recs))
	for i, r := range recs {
		out[i] = FromRecord(r)
	}
	return out, next, nil
}
