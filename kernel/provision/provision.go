// Package provision defines the provisioner extension kind: it pushes
// identity changes outward (outbound SCIM 2.0, webhooks, just-in-time
// accounts in another system). The kernel delivers changes to provisioners
// asynchronously, at least once and in order per record, after the change is
// stored; a provisioner's failure never undoes the change.
package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrRetry means the target asked to be retried later; the error is a
	// *RetryError that says when.
	ErrRetry = errors.New("provisioning target asked for a retry")
	// ErrInvalidResponse means a provisioner's answer broke the contract.
	// It is always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid provisioner response")
)

// Provisioner pushes one change to its target. It is named Push rather than
// Provision because a provisioner may also implement the lifecycle's
// extension.Provisioner.
//
// Push returns a response whose outcome is abi.ProvisionDone,
// abi.ProvisionSkipped or abi.ProvisionRetry, or an error for a failure
// that retrying will not fix. Implementations must be idempotent per event
// id, safe for concurrent use, and must return promptly when ctx is done.
type Provisioner interface {
	Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error)
}

// RetryError asks the kernel to deliver the event again after After.
type RetryError struct {
	// After is how long to wait; 0 lets the kernel choose its backoff.
	After time.Duration
}

// Error describes the retry.
func (e *RetryError) Error() string {
	return fmt.Sprintf("%s after %s", ErrRetry, e.After)
}

// Is makes errors.Is(err, ErrRetry) hold.
func (e *RetryError) Is(target error) bool {
	return target == ErrRetry
}

// Check turns what Push returned into a checked report: a nil error and a
// response that is done or skipped; a *RetryError (matching ErrRetry) for a
// retry; or an error that carries a *fault.Error.
func Check(resp abi.ProvisionResponse, err error) (abi.ProvisionResponse, error) {
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	if resp.Error != nil {
		return abi.ProvisionResponse{}, fault.FromWire(*resp.Error)
	}
	switch resp.Outcome {
	case abi.ProvisionDone, abi.ProvisionSkipped:
		return resp, nil
	case abi.ProvisionRetry:
		if resp.RetryAfterMillis < 0 {
			return abi.ProvisionResponse{}, fault.Internal.WithCause(fmt.Errorf("checking provisioner response: %w: negative retry_after_millis", ErrInvalidResponse))
		}
		return abi.ProvisionResponse{}, &RetryError{After: time.Duration(resp.RetryAfterMillis) * time.Millisecond}
	}
	return abi.ProvisionResponse{}, fault.Internal.WithCause(fmt.Errorf("checking provisioner response: %w: outcome %q", ErrInvalidResponse, resp.Outcome))
}

var _ error = (*RetryError)(nil)
