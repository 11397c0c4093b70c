// Package native runs a Latch extension module as a separate, native
// process (a go-plugin binary) and carries the ABI's Call and Reply
// envelopes to it over gRPC (abi/SPEC.md section 3): a *Plugin is a
// kernel/plugin.Transport, so plugin.Modules adapts it into the six kinds'
// Go interfaces exactly as it adapts a WASM module, and the pipeline cannot
// tell the two apart. Plugin authors build such a binary with
// sdk/plugin/native.Serve from the same code they build to WASM.
//
// # Loading
//
//  1. Load starts the binary through go-plugin: the handshake checks a magic
//     cookie (so that a binary run by hand says it is a plugin and exits)
//     and the protocol version, which is the ABI version (abi.Version); the
//     connection uses mutual TLS with certificates made for the process
//     (go-plugin's AutoMTLS); when Options.Checksum is set the binary's
//     SHA-256 is checked before it is executed.
//  2. It opens the host-call back channel: the host serves the Host service
//     on a stream of go-plugin's GRPCBroker and tells the plugin its id.
//  3. It reads the module's Description and checks it with
//     plugin.CheckDescription against the operator's grants, as for a WASM
//     module. A refused binary is stopped.
//
// # The wire
//
// Two hand-written gRPC services whose messages are
// google.protobuf.BytesValue holding abi wire bytes, so that the only schema
// is the ABI's own:
//
//	latch.plugin.v1.Plugin/Describe (Empty)         -> BytesValue(Description)
//	latch.plugin.v1.Plugin/Open     (UInt32Value)   -> Empty      // broker id of the Host service
//	latch.plugin.v1.Plugin/Handle   (BytesValue(Call)) -> BytesValue(Reply)
//	latch.plugin.v1.Host/HostCall   (BytesValue(HostCall)) -> BytesValue(HostReply)
//
// Every Handle carries a "latch-call" metadata value, a number the host
// gave the call; the plugin sends it back with each HostCall it makes while
// serving it, so that the host answers the host call in the context (the
// plugin.Scope: instance, tenant, configuration) and under the deadline of
// the call it belongs to. Each process has its own Host service on its
// own connection, which knows only the calls sent to that process, so a
// process cannot act in the context of a call another one serves. A
// HostCall naming no call in flight is refused with invalid_request.
//
// # Supervision
//
// A Plugin runs Options.Processes processes of the binary, each serving one
// call at a time (the SDK's dispatcher reuses its buffers between calls, as
// in a WASM instance), so that number bounds the calls in flight; more
// calls wait for a free process up to their deadline. Each call runs under
// Options.CallTimeout, or the caller's shorter deadline.
//
// Each process is watched. When one exits (a crash, kill -9), its call
// fails closed with fault.Unavailable and it takes no more calls; while no
// process runs, calls fail at once with fault.Unavailable wrapping
// ErrNotRunning ("plugin/<id>: the plugin process is not running"), and
// the rest of the server serves on. A process past its deadline may be
// stuck, so it is killed, as a WASM instance past its deadline is
// discarded. A dead process is restarted with exponential backoff
// (Options.MinBackoff to Options.MaxBackoff); the restarted binary must
// describe itself exactly as at load (a binary swapped under a running
// server is not served), and it is sent again the configure calls that
// succeeded before it takes calls. A call that could not reach a process
// that had just died (the connection refused: it never ran) is sent to
// another process; one that reached it is not, as it may be what killed
// it.
//
// # Decisions
//
// Why gRPC with hand-written service descriptors and no generated code?
// The messages are the ABI's bytes: a generated protobuf schema would be a
// second schema to keep in step with abi/, and BytesValue from the
// protobuf well-known types carries bytes without one. go-plugin's own
// services (health, broker, stdio) are gRPC, so net/rpc would add a second
// protocol rather than save one.
//
// Why is a native plugin not sandboxed? It is a process of the operator's
// machine, chosen because it needs what WASM cannot give (drivers, cgo,
// long-lived connections). The capabilities gate what the host serves it
// (the host calls: kv, secrets, user lookup, audit, http, config) exactly
// as for WASM; its own clock, randomness and network are its own, and the
// operator's trust in the binary rests on the checksum from the signed
// bundle.
package native
