package pipeline

import (
	"time"
)

// Decision is one verdict a stage reached about the flow, kept for the audit
// record and for later stages.
type Decision struct {
	// Stage is the stage that decided.
	Stage Stage
	// By names the handler or extension instance that decided.
	By string
	// Effect is the verdict: "allow", "deny", "challenge", "throttle", ...
	Effect string
	// Reason is a short machine-readable why ("policy:admins-only",
	// "rate:login-ip").
	Reason string
}

// Flow is one request travelling through a chain. Stages read and fill it in
// order; it is not safe for concurrent use (a stage that starts goroutines
// must not let them touch the flow after it returns).
type Flow struct {
	// Chain is the chain the flow runs through; Run sets it.
	Chain Chain
	// Tenant is the tenant's name.
	Tenant string
	// RequestID identifies the request in logs and audit events.
	RequestID string
	// Started is when the flow began.
	Started time.Time
	// Client is the client (application) the request is for, when known.
	Client string
	// Subject is the authenticated user or client, once known.
	Subject string
	// Claims holds the subject's claims, in the dialect of the stage that
	// last mapped them.
	Claims map[string]any
	// Decisions lists the verdicts reached so far, in order.
	Decisions []Decision
	// Err is the error that stopped the flow; set for the stages that run
	// always (audit) after a failure.
	Err error
	// FailedStage is the stage whose handler returned Err.
	FailedStage Stage

	stage  Stage
	halted bool
	values map[any]any
}

// NewFlow returns a flow for a request of the tenant, started now.
func NewFlow(tenant, requestID string) *Flow {
	return &Flow{Tenant: tenant, RequestID: requestID, Started: time.Now(), Claims: make(map[string]any)}
}

// Stage returns the stage running now.
func (f *Flow) Stage() Stage { return f.stage }

// Decide appends a decision of the current stage.
func (f *Flow) Decide(by, effect, reason string) {
	f.Decisions = append(f.Decisions, Decision{Stage: f.stage, By: by, Effect: effect, Reason: reason})
}

// Halt ends the flow successfully once the current handler returns: the
// front door has its answer (a login form to show, a redirect to follow) and
// the later stages must not run, except those that run always.
func (f *Flow) Halt() { f.halted = true }

// Halted reports whether a handler halted the flow.
func (f *Flow) Halted() bool { return f.halted }

// Key is a typed slot for protocol-specific values a front door and its
// handlers share through a Flow (the parsed OIDC request, the gateway
// route). Keys are compared by identity: make each one once, with NewKey, in
// a package-level var.
type Key[T any] struct {
	name *string
}

// NewKey returns a new key; name is for debugging only.
func NewKey[T any](name string) Key[T] {
	return Key[T]{name: &name}
}

// Name returns the key's name.
func (k Key[T]) Name() string {
	if k.name == nil {
		return ""
	}
	return *k.name
}

// Get returns the value stored under k in f.
func (k Key[T]) Get(f *Flow) (T, bool) {
	v, ok := f.values[k.name].(T)
	return v, ok
}

// Set stores v under k in f.
func (k Key[T]) Set(f *Flow, v T) {
	if f.values == nil {
		f.values = make(map[any]any)
	}
	f.values[k.name] = v
}
