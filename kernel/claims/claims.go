// Package claims defines the claim mapper extension kind: it translates a set
// of claims between dialects (an upstream identity provider's, Latch's local
// one, OIDC, SCIM, SAML, the gateway's backend JWT). Mappers of a tenant run
// as a chain, each given the previous one's output; renaming, computing and
// filtering claims are all mappings.
package claims

import (
	"context"
	"errors"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrInvalidResponse means a mapper's answer broke the contract. It is
	// always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid claim mapper response")
)

// Mapper translates claims from req.From to req.To. A mapper that has
// nothing to do for this pair of dialects returns req.Claims unchanged.
// Implementations must not modify req.Claims in place, must be safe for
// concurrent use and must return promptly when ctx is done.
type Mapper interface {
	Map(ctx context.Context, req abi.MapRequest) (abi.MapResponse, error)
}

// Check turns what Map returned into checked claims: a non-nil map and a nil
// error, or an error that carries a *fault.Error.
func Check(resp abi.MapResponse, err error) (map[string]any, error) {
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, fault.FromWire(*resp.Error)
	}
	if resp.Claims == nil {
		// The wire encoding leaves empty maps out, so "no claims" and "an
		// empty set of claims" arrive alike: both mean every claim is
		// dropped, which errs on the side of sending less.
		return map[string]any{}, nil
	}
	return resp.Claims, nil
}
