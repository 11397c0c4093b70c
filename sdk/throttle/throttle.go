// Package throttle is the throttler kind for Latch WASM guests: the
// interface an author implements to answer "may this key spend N units
// now?", its Register function, and builders for the verdicts.
//
// Writing a throttler:
//
//  1. Implement Throttler on a type of yours; keep the buckets in the host's
//     key-value space (sdk/host KV functions, capability "kv"), since the
//     host may send any call to any instance of the module.
//  2. Answer Allowed(remaining) or Denied(retryAfter) under req.Limit; a
//     granted request spends req.Cost units (0 means 1), a refused one none.
//  3. Return an error when you cannot decide (answered in
//     AllowResponse.Error); the kernel then applies the policy's fail mode.
//  4. From an init function, call plugin.Define once and Register(name, impl).
//  5. Test it with sdk/plugintest: h.Allow(name, req).
package throttle

import (
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
)

// Throttler judges whether a key may spend units. It may also implement the
// optional interfaces of sdk/plugin: Configure, Health and Close.
type Throttler interface {
	Allow(req abi.AllowRequest) (abi.AllowResponse, error)
}

// Register adds t as the throttler named name (its extension id is
// "throttle.<name>"). Call it from an init function; it panics for an
// invalid or repeated name or a nil t (see plugin.Register).
func Register(name string, t Throttler) {
	if t == nil {
		panic("throttle: Register: nil Throttler " + name)
	}
	plugin.Register(abi.KindThrottler, name, t, handler(t))
}

// handler answers abi.OpCodeAllow with t.
func handler(t Throttler) plugin.Handler {
	// The request and response are reused from call to call (the
	// dispatcher runs one call at a time), which saves two allocations a
	// call; the request is cleared after use so it keeps nothing alive.
	var (
		req  abi.AllowRequest
		resp abi.AllowResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := plugin.Decode(payload, &req); err != nil {
			req = abi.AllowRequest{}
			return nil, err
		}
		r, err := t.Allow(req)
		req = abi.AllowRequest{}
		if err != nil {
			r = abi.AllowResponse{Error: plugin.WireError(err)}
		}
		resp = r
		return &resp, nil
	}
}

// Allowed grants the units, with remaining units left. Set
// ResetAfterMillis on the result as needed.
func Allowed(remaining int64) abi.AllowResponse {
	return abi.AllowResponse{Allowed: true, Remaining: remaining}
}

// Denied refuses the units; retryAfter is how long until they would be
// granted (the Retry-After header).
func Denied(retryAfter time.Duration) abi.AllowResponse {
	return abi.AllowResponse{RetryAfterMillis: retryAfter.Milliseconds()}
}
