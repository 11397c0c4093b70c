// Package guest is the runtime a Latch WASM extension links: it implements
// the guest side of the Latch ABI v1 calling convention (abi/SPEC.md) so that
// a plugin author writes ordinary Go functions over byte slices and never
// touches linear-memory pointers.
//
// A guest is a WASI reactor built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// (TinyGo works too: the package uses no reflection and no encoding/json).
// In a reactor, main is never called: the host runs package initialisation
// once (the _initialize export) and then calls the exports below. Register
// the handlers from an init function:
//
//	package main
//
//	import "github.com/latchid/latch/sdk/guest"
//
//	func init() {
//		guest.Handle(func(call []byte) []byte { return call }) // echo
//		guest.Describe(func() []byte { return describeMessage })
//	}
//
//	func main() {}
//
// # What the package exports to the host
//
//   - latch_abi_v1() marks the module as speaking Latch ABI v1; a host
//     refuses a module without it.
//   - latch_buffer(size i32) -> i32 returns a buffer of at least size bytes,
//     valid until the next latch_buffer call, that the host writes a call
//     (or a host_call answer) into.
//   - latch_handle(len i32) -> i64 runs the Handle function on the len bytes
//     in the buffer last returned and returns the reply as ptr<<32 | len.
//   - latch_describe() -> i64 returns the Describe message the same way.
//
// # What it imports from the host (module latch_v1)
//
// log, now_unix_nanos, random and host_call, behind Log, Now, Random and
// HostCall. Each needs a capability the operator grants ("log", "clock",
// "random", and for host_call any capability served through it). The Go
// linker drops an import the program never reaches, so a guest that never
// calls HostCall does not import host_call; a host refuses a module that
// imports a host function whose capability was not granted.
//
// # Buffers and lifetimes
//
// The call slice a Handle function receives aliases the guest's call
// buffer: it is valid until the function returns, and a later call may
// overwrite it. Copy what must outlive the call. The reply a Handle
// function returns is kept alive by the package until the next call. Answers
// to HostCall arrive in a second buffer, so a host call never overwrites
// the call being handled, and HostCall returns them as a fresh copy.
//
// # Outside WASM
//
// The package builds on every platform so that plugin code type-checks and
// unit-tests with the ordinary go tool, but the host imports exist only in
// a wasip1 build: on other platforms Log, Now, Random and HostCall panic
// with ErrNotInGuest's message unless a TestHost stands in for the host.
// The test seam exists only outside wasip1 builds: SetTestHost installs a
// TestHost, TestCall and TestDescribe run the registered functions as the
// latch_handle and latch_describe exports would. Package sdk/plugintest is
// the harness built on them; plugin authors use it rather than the seam.
// To run the built module under the real WASM host, use the conformance
// kit (conformance/abi) or `latch plugin test`.
package guest
