package abi

import "encoding/json"

// Provisioning operations: what happened to the resource.
const (
	ProvisionCreate = "create"
	ProvisionUpdate = "update"
	ProvisionDelete = "delete"
)

// Provisioned resources: what kind of record changed.
const (
	ResourceUser  = "user"
	ResourceGroup = "group"
)

// Provisioning results.
const (
	// ProvisionDone: the change was pushed.
	ProvisionDone = "done"
	// ProvisionSkipped: the change is of no interest to this provisioner
	// (filtered out by its configuration).
	ProvisionSkipped = "skipped"
	// ProvisionRetry: the target is busy; the kernel retries after
	// RetryAfterMillis.
	ProvisionRetry = "retry"
)

// ProvisionEvent tells a provisioner that an identity record changed. Events
// are delivered asynchronously, at least once, in order per resource; a
// provisioner must tolerate a repeated event.
//
// Encoding example:
//
//	{"id":"e-19","tenant":"acme","op":"update","resource":"user","resource_id":"u-42",
//	 "external_id":"00u1ab","user":{"id":"u-42","username":"alice","enabled":true}}
type ProvisionEvent struct {
	// ID identifies the event; it is the same on every redelivery.
	ID string `json:"id" wire:"1"`
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"2"`
	// Op is one of the Provision... operation constants.
	Op string `json:"op" wire:"3"`
	// Resource is ResourceUser or ResourceGroup.
	Resource string `json:"resource" wire:"4"`
	// ResourceID is the local id of the record.
	ResourceID string `json:"resource_id" wire:"5"`
	// ExternalID is the id the target gave the record earlier (returned
	// in ProvisionResponse.ExternalID); empty the first time.
	ExternalID string `json:"external_id,omitempty" wire:"6"`
	// User is the user record after the change (before it, for a delete);
	// set when Resource is ResourceUser.
	User *User `json:"user,omitempty" wire:"7"`
	// Group is the group record after the change (before it, for a
	// delete); set when Resource is ResourceGroup.
	Group *Group `json:"group,omitempty" wire:"8"`
	// Members lists the ids of the group's members; set when Resource is
	// ResourceGroup and membership changed.
	Members []string `json:"members,omitempty" wire:"9"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"10"`
}

// ProvisionResponse is a provisioner's report on one event.
type ProvisionResponse struct {
	// Outcome is one of ProvisionDone, ProvisionSkipped, ProvisionRetry.
	Outcome string `json:"outcome" wire:"1"`
	// ExternalID is the id the target gave the record; the kernel keeps it
	// and sends it with later events of the same record.
	ExternalID string `json:"external_id,omitempty" wire:"2"`
	// RetryAfterMillis is how long to wait before retrying; set with
	// ProvisionRetry.
	RetryAfterMillis int64 `json:"retry_after_millis,omitempty" wire:"3"`
	// Error says why the push failed for good (the kernel does not retry
	// it).
	Error *Error `json:"error,omitempty" wire:"4"`
}
