// Package grant is the grant-type kind for Latch WASM guests: the interface
// an author implements to judge token requests (RFC 6749 section 4.5
// extension grants and custom flows), its Register function, and Decline.
//
// Writing a grant type:
//
//  1. Implement Type on a type of yours.
//  2. Return Decline() for a request it does not handle (another
//     grant_type): the kernel offers it to the next grant.
//  3. Otherwise return the facts of the token (Subject, Scopes, Claims, …);
//     the kernel mints and signs it. Refuse with a *plugin.Error
//     (plugin.ErrUnauthenticated becomes invalid_grant).
//  4. From an init function, call plugin.Define once and Register(name, impl).
//  5. Test it with sdk/plugintest: h.Token(name, req).
package grant

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Type judges token requests. Token returns the facts of the tokens to
// issue, Decline() when the grant does not handle the request, or an error
// to refuse it (answered in TokenResponse.Error: a *plugin.Error keeps its
// code, anything else is internal). It may also implement the optional
// interfaces of sdk/plugin: Configure, Health and Close.
type Type interface {
	Token(req abi.TokenRequest) (abi.TokenResponse, error)
}

// Register adds t as the grant type named name (its extension id is
// "grant.<name>"). Call it from an init function; it panics for an invalid
// or repeated name or a nil t (see plugin.Register).
func Register(name string, t Type) {
	if t == nil {
		panic("grant: Register: nil Type " + name)
	}
	plugin.Register(abi.KindGrant, name, t, handler(t))
}

// handler answers abi.OpCodeToken with t.
func handler(t Type) plugin.Handler {
	// The request and response are reused from call to call (the
	// dispatcher runs one call at a time), which saves two allocations a
	// call; the request is cleared after use so it keeps nothing alive.
	var (
		req  abi.TokenRequest
		resp abi.TokenResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := plugin.Decode(payload, &req); err != nil {
			req = abi.TokenRequest{}
			return nil, err
		}
		r, err := t.Token(req)
		req = abi.TokenRequest{}
		if err != nil {
			r = abi.TokenResponse{Error: plugin.WireError(err)}
		}
		resp = r
		return &resp, nil
	}
}

// Decline answers that this grant does not handle the request.
func Decline() abi.TokenResponse {
	return abi.TokenResponse{Declined: true}
}
