// Package claims is the claim-mapper kind for Latch WASM guests: the
// interface an author implements to translate claims between dialects, and
// its Register function.
//
// Writing a claim mapper:
//
//  1. Implement Mapper on a type of yours.
//  2. Translate req.Claims from req.From to req.To; mappers run in a
//     chain, so pass through the claims you do not know unless you mean to
//     drop them.
//  3. Return an error when the mapping fails (answered in
//     MapResponse.Error: a *plugin.Error keeps its code, anything else is
//     internal).
//  4. From an init function, call plugin.Define once and Register(name, impl).
//  5. Test it with sdk/plugintest: h.MapClaims(name, req).
package claims

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Mapper translates claims. It may also implement the optional interfaces
// of sdk/plugin: Configure, Health and Close.
type Mapper interface {
	Map(req abi.MapRequest) (abi.MapResponse, error)
}

// Register adds m as the claim mapper named name (its extension id is
// "claims.<name>"). Call it from an init function; it panics for an
// invalid or repeated name or a nil m (see plugin.Register).
func Register(name string, m Mapper) {
	if m == nil {
		panic("claims: Register: nil Mapper " + name)
	}
	plugin.Register(abi.KindClaims, name, m, handler(m))
}

// handler answers abi.OpCodeMapClaims with m.
func handler(m Mapper) plugin.Handler {
	// The request and response are reused from call to call (the
	// dispatcher runs one call at a time), which saves two allocations a
	// call; the request is cleared after use so it keeps nothing alive.
	var (
		req  abi.MapRequest
		resp abi.MapResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := plugin.Decode(payload, &req); err != nil {
			req = abi.MapRequest{}
			return nil, err
		}
		r, err := m.Map(req)
		req = abi.MapRequest{}
		if err != nil {
			r = abi.MapResponse{Error: plugin.WireError(err)}
		}
		resp = r
		return &resp, nil
	}
}
