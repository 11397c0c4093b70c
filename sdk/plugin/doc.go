// Package plugin is the module-level API of a Latch extension written in Go
// and built as a WASM guest: it describes the module, holds its registered
// extensions, and dispatches the host's calls to them over the Latch ABI v1
// (abi/SPEC.md). Authors implement a kind's interface from a kind package
// (sdk/authn, sdk/grant, sdk/userstore, sdk/claims, sdk/throttle,
// sdk/provision), call host functions through sdk/host, and test with
// sdk/plugintest.
//
// # A module, start to finish
//
//	package main
//
//	import (
//		"github.com/latchid/latch/abi"
//		"github.com/latchid/latch/sdk/authn"
//		"github.com/latchid/latch/sdk/plugin"
//	)
//
//	type magicWord struct{}
//
//	func (magicWord) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
//		switch word := req.Params["word"]; {
//		case len(word) == 0:
//			return authn.Form(abi.Field{Name: "word", Type: abi.FieldPassword, Required: true}), nil
//		case word[0] == "please":
//			return authn.Authenticated("u-1", nil), nil
//		}
//		return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
//	}
//
//	func init() {
//		plugin.Define(plugin.Meta{Name: "magic", Version: "1.0.0"})
//		authn.Register("magic_word", magicWord{})
//	}
//
//	func main() {}
//
// Test it natively with sdk/plugintest, then build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o magic.wasm .
//
// # Register in init, never in main
//
// A guest is a WASI reactor: the host runs package initialisation once (the
// _initialize export) and then calls the module's exports. Its main
// function never runs. Define and the kind packages' Register functions
// must therefore be called from an init function: it is the one place in a
// Latch guest where init is right. Both panic on a programmer error (a bad
// name, a repeated registration), which fails the module at load.
//
// # Lifecycle of an extension
//
//  1. Construct: init registers a value of the author's type; the host
//     reads the module's Description (Meta and the registered entries,
//     each at its registration index).
//  2. Configure: the host sends the operator's configuration, valid
//     against Meta.ConfigSchema, to the extension's optional
//     Configure(config []byte) error; an error refuses it.
//  3. Serve: the host sends requests of the kind's operations; requests
//     carry the configuration too, as the host may send any call to any
//     warm instance of the module.
//  4. Health: the optional Health() error says whether it can serve.
//  5. Close: the optional Close() error releases what it holds; it may
//     follow a refused configuration, so it copes with one that never took.
//
// # Errors
//
// There are two levels (abi/SPEC.md section 5). A call that cannot run (a
// Call that does not decode: invalid_request; an operation the contract
// does not define, or that the entry's kind does not answer: unsupported;
// an unknown entry: not_found) and an error from Configure, Health or
// Close answer with Reply.Error. An error an extension returns from an
// operation goes into that operation's response (its Error field, with
// abi.OutcomeFailure for an authenticator). Either way an *Error keeps its
// code and message, and any other error becomes abi.CodeInternal with a
// generic message: internal detail never leaves the module, but reaches
// Meta.OnInternalError.
//
// A panic is not recovered: it traps the guest, and the host discards the
// instance and fails the call closed, so that a broken instance never
// serves another call.
//
// # Capabilities
//
// A module declares in Meta.Capabilities what it needs of the host (log,
// clock, random, config, kv, secrets, userlookup, audit, http), and the
// operator grants it. The dispatcher itself needs none: it never logs, so a
// module imports only the host functions its own code reaches.
package plugin
