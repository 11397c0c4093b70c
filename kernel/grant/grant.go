// Package grant defines the grant type extension kind: it exchanges a token
// request (RFC 6749 section 4.5, extension grants; RFC 8693 token exchange;
// custom flows) for the facts of the tokens to issue. The grant judges the
// request and says for whom and with which scopes; the kernel mints, signs
// and stores the tokens, so a grant never handles signing keys.
//
// A grant may decline a request it does not handle, as ORY fosite's token
// endpoint handlers do: the kernel then offers the request to the tenant's
// next grant and answers unsupported_grant_type when all decline.
package grant

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrDeclined means the grant does not handle the request. It is a
	// signal to try the next grant, not a failure.
	ErrDeclined = errors.New("grant declined the request")
	// ErrInvalidResponse means a grant's answer broke the contract. It is
	// always wrapped in a fault.Internal.
	ErrInvalidResponse = errors.New("invalid grant response")
	// ErrUnsupportedGrantType is the fault a front door reports when every
	// grant declined (OAuth2 unsupported_grant_type).
	ErrUnsupportedGrantType = fault.InvalidRequest.WithMessage("unsupported grant type")
)

// Type is the interface a grant type implements: it judges token requests.
//
// Token returns a response with Declined set, or ErrDeclined, when it does
// not handle the request; a response naming what to issue when it grants;
// and an error (a *fault.Error for the client to see, such as
// fault.Unauthenticated for an invalid grant) when it refuses or fails.
//
// Implementations must be safe for concurrent use and must return promptly
// when ctx is done.
type Type interface {
	Token(ctx context.Context, req abi.TokenRequest) (abi.TokenResponse, error)
}

// Matcher is implemented by grants that can tell from the grant_type value
// alone whether they may handle a request. The kernel skips a Matcher that
// answers false without calling Token.
type Matcher interface {
	HandlesGrantType(grantType string) bool
}

// Check turns what Token returned into a checked verdict: a nil error and a
// response to issue; ErrDeclined when the grant declined; or an error that
// carries a *fault.Error. When the request named scopes, a response that
// grants a scope that was not requested breaks the contract (with no scopes
// requested the grant may choose; the front door still limits them to the
// client's allowed scopes).
func Check(req abi.TokenRequest, resp abi.TokenResponse, err error) (abi.TokenResponse, error) {
	if err != nil {
		return abi.TokenResponse{}, err
	}
	if resp.Declined {
		return abi.TokenResponse{}, ErrDeclined
	}
	if resp.Error != nil {
		return abi.TokenResponse{}, fault.FromWire(*resp.Error)
	}
	requested := make(map[string]bool, len(req.Scopes))
	for _, s := range req.Scopes {
		requested[s] = true
	}
	for _, s := range resp.Scopes {
		if len(requested) > 0 && !requested[s] {
			return abi.TokenResponse{}, fault.Internal.WithCause(fmt.Errorf("checking grant response: %w: scope %q was not requested", ErrInvalidResponse, s))
		}
	}
	if resp.AccessTokenTTLSeconds < 0 {
		return abi.TokenResponse{}, fault.Internal.WithCause(fmt.Errorf("checking grant response: %w: negative access token lifetime", ErrInvalidResponse))
	}
	return resp, nil
}
