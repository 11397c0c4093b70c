// Package provision is the provisioner kind for Latch WASM guests: the
// interface an author implements to push identity changes outward
// (outbound SCIM, webhooks), its Register function, and builders for its
// reports.
//
// Writing a provisioner:
//
//  1. Implement Provisioner on a type of yours. Events arrive at least
//     once, in order per resource: tolerate a repeated event (ev.ID is
//     the same on every redelivery).
//  2. Answer Done(externalID) when pushed (the kernel keeps the target's
//     id and sends it back as ev.ExternalID), Skipped() when the event is
//     of no interest, Retry(after) when the target is busy.
//  3. Return an error for a push that failed for good (answered in
//     ProvisionResponse.Error; the kernel does not retry it).
//  4. From an init function, call plugin.Define once and Register(name, impl).
//  5. Test it with sdk/plugintest: h.Provision(name, ev).
package provision

import (
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Provisioner pushes one identity change. It may also implement the
// optional interfaces of sdk/plugin: Configure, Health and Close.
type Provisioner interface {
	Push(ev abi.ProvisionEvent) (abi.ProvisionResponse, error)
}

// Register adds p as the provisioner named name (its extension id is
// "provision.<name>"). Call it from an init function; it panics for an
// invalid or repeated name or a nil p (see plugin.Register).
func Register(name string, p Provisioner) {
	if p == nil {
		panic("provision: Register: nil Provisioner " + name)
	}
	plugin.Register(abi.KindProvisioner, name, p, handler(p))
}

// handler answers abi.OpCodeProvision with p.
func handler(p Provisioner) plugin.Handler {
	// The request and response are reused from call to call (the
	// dispatcher runs one call at a time), which saves two allocations a
	// call; the request is cleared after use so it keeps nothing alive.
	var (
		ev   abi.ProvisionEvent
		resp abi.ProvisionResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := plugin.Decode(payload, &ev); err != nil {
			ev = abi.ProvisionEvent{}
			return nil, err
		}
		r, err := p.Push(ev)
		ev = abi.ProvisionEvent{}
		if err != nil {
			r = abi.ProvisionResponse{Error: plugin.WireError(err)}
		}
		resp = r
		return &resp, nil
	}
}

// Done reports the change pushed; externalID is the id the target gave the
// record (empty when it has none).
func Done(externalID string) abi.ProvisionResponse {
	return abi.ProvisionResponse{Outcome: abi.ProvisionDone, ExternalID: externalID}
}

// Skipped reports the change of no interest to this provisioner.
func Skipped() abi.ProvisionResponse {
	return abi.ProvisionResponse{Outcome: abi.ProvisionSkipped}
}

// Retry reports the target busy: the kernel retries after after.
func Retry(after time.Duration) abi.ProvisionResponse {
	return abi.ProvisionResponse{Outcome: abi.ProvisionRetry, RetryAfterMillis: after.Milliseconds()}
}
