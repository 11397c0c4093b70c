// Package abi holds the conformance suites of the extension kinds: one
// importable suite per kind (STYLE.md rule 17) that a builtin, a WASM and a
// go-plugin implementation all pass alike, because each suite sees only the
// kind's Go interface (authn.Authenticator, throttle.Throttler,
// claims.Mapper) and judges every answer with the kind's Check.
//
// A suite takes a factory, called once per subtest so that subtests do not
// share state, and the cases the implementation must satisfy, which only
// its author knows (the credentials it accepts, the limit it enforces):
//
//	abiconf.RunAuthenticator(t, func(t *testing.T) authn.Authenticator {
//		return newPIN(t)
//	}, abiconf.AuthenticatorCases{
//		Accept: abi.AuthenticateRequest{Params: map[string][]string{"pin": {"1234"}}},
//		Reject: abi.AuthenticateRequest{Params: map[string][]string{"pin": {"9999"}}},
//	})
//
// Every suite also checks that concurrent calls are safe (run it with
// -race), that a cancelled context is honoured promptly (the call returns
// within CancelWithin, with an error or a valid answer) and that the
// request is not modified.
//
// A WASM module is loaded for a suite as the kernel loads it:
// plugin.LoadWASM into a wasmhost.Host, plugin.Modules registered into an
// extension.Registry, Registry.Load an instance and pass its Value (see
// abi_test.go).
//
// Import it under another name, as the contract's package is also abi:
//
//	import abiconf "github.com/latchid/latch/conformance/abi"
package abi
