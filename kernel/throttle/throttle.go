// Package throttle defines the throttler extension kind: the answer to "may
// this key spend N units now?". The local GCRA limiter, a distributed
// limiter on Redis and custom policies are throttlers; the pipeline's
// throttle stage and the brute-force lock ask them.
package throttle

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
	// ErrLimited is the fault a front door reports for a refused request;
	// Refusal adds the retry time.
	ErrLimited = fault.RateLimited
	// ErrInvalidLimit means a policy cannot be applied (a non-positive rate
	// or period, a negative burst).
	ErrInvalidLimit = errors.New("invalid limit")
	// ErrInvalidResponse means a throttler's answer broke the contract. It
	// is always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid throttler response")
)

// Throttler decides whether a key may spend units now; a granted request
// spends them. Implementations must be safe for concurrent use and must
// return promptly when ctx is done: they sit on the request path of every
// call.
type Throttler interface {
	Allow(ctx context.Context, req abi.AllowRequest) (abi.AllowResponse, error)
}

// ValidateLimit reports whether l can be applied, wrapping ErrInvalidLimit
// when it cannot.
func ValidateLimit(l abi.Limit) error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("validating limit: %w: rate must be > 0", ErrInvalidLimit)
	case l.PeriodMillis <= 0:
		return fmt.Errorf("validating limit: %w: period_millis must be > 0", ErrInvalidLimit)
	case l.Burst < 0:
		return fmt.Errorf("validating limit: %w: burst must be >= 0", ErrInvalidLimit)
	}
	return nil
}

// Check turns what Allow returned into a checked verdict: a nil error and a
// response with non-negative numbers, or an error that carries a
// *fault.Error (the caller then applies its fail mode, open or closed).
func Check(resp abi.AllowResponse, err error) (abi.AllowResponse, error) {
	if err != nil {
		return abi.AllowResponse{}, err
	}
	if resp.Error != nil {
		return abi.AllowResponse{}, fault.FromWire(*resp.Error)
	}
	if resp.Remaining < 0 || resp.RetryAfterMillis < 0 || resp.ResetAfterMillis < 0 {
		return abi.AllowResponse{}, fault.Internal.WithCause(fmt.Errorf("checking throttler response: %w: negative count or duration", ErrInvalidResponse))
	}
	return resp, nil
}

// Refusal returns the fault for a refused request, telling the client when
// to retry; nil when resp allowed the request.
func Refusal(resp abi.AllowResponse) *fault.Error {
	if resp.Allowed {
		return nil
	}
	return ErrLimited.WithRetryAfter(time.Duration(resp.RetryAfterMillis) * time.Millisecond)
}
