package store

import (
	"context"
	"time"
)

// Flow is one version of a tenant's named authentication flow: the steps a
// login goes through, the authenticators each step offers and an optional
// adaptive script. Applications refer to a flow by name and run its latest
// version. Versions are immutable: every save adds a version.
type Flow struct {
	TenantID string
	// Name is unique per tenant.
	Name string
	// Version counts from 1; each save of the name adds one.
	Version int64
	// Definition is the flow itself, in the shape of an application's
	// inline settings.authentication (see builtin/login).
	Definition map[string]any
	// Comment says why this version was saved ("rolled back to 2", ...).
	Comment   string
	CreatedAt time.Time
}

// Flows stores versioned authentication flows.
type Flows interface {
	// PutFlow stores f.Definition as the next version of the flow f.Name
	// (1 when the tenant has no such flow) and returns the stored version.
	// f.Version is ignored.
	PutFlow(ctx context.Context, f Flow) (Flow, error)
	// GetFlow returns one version of a flow; version 0 means the latest.
	GetFlow(ctx context.Context, tenantID, name string, version int64) (Flow, error)
	// ListFlows lists the latest version of each of the tenant's flows,
	// ordered by name; the cursor is the last name of a page.
	ListFlows(ctx context.Context, tenantID string, p Page) ([]Flow, string, error)
	// ListFlowVersions lists every version of a flow, oldest first. A flow
	// with no version is ErrNotFound.
	ListFlowVersions(ctx context.Context, tenantID, name string) ([]Flow, error)
	// DeleteFlow removes every version of a flow.
	DeleteFlow(ctx context.Context, tenantID, name string) error
}
