// Package wasmhost runs Latch extensions built as WebAssembly modules, on
// wazero, behind the Latch ABI v1 calling convention (abi/SPEC.md). It moves
// bytes: a call's payload in, a reply out, host functions in between; what
// the bytes mean is the abi package's business, and wrapping a module into
// the kernel's extension interfaces is its caller's.
//
// # Lifecycle
//
//  1. New creates a Host with the process-wide compilation cache (on disk
//     when Options.CacheDir is set, so a restart does not compile again).
//     Create one per process.
//  2. Host.Load compiles a module (or takes it from the cache) and checks
//     it before running any of its code: the latch_abi_v1 marker and the
//     other exports with their signatures, an exported memory, and every
//     import: WASI preview 1, or a latch_v1 host function whose capability
//     the operator granted (ModuleOptions.Grants). Then it creates
//     MinInstances instances, each running the guest's _initialize, and
//     reads the describe message (latch_describe) once from the first.
//  3. Module.Call takes an idle instance from the pool (creating one below
//     MaxInstances, else waiting while the caller's context lasts), writes
//     the payload into a buffer from latch_buffer, calls latch_handle under
//     the call deadline and copies the reply out. A healthy instance goes
//     back to the pool; one that failed in any way is discarded and
//     replaced on demand, so a guest's broken state never serves another
//     call.
//  4. Module.Close closes the module and its instances; Host.Close closes
//     every module and the cache (the on-disk cache stays).
//
// # Limits
//
// Guests are untrusted. Every instance runs
//
//   - with its linear memory capped at MemoryLimitPages (64 MiB by default);
//   - under a deadline per call, CallTimeout (1 s by default), which even
//     an endless loop cannot outrun: Load compiles an instrumented copy of
//     the module (internal/meter) whose loops count down a fuel global,
//     return to Go every 4096 loop headers (so the Go scheduler and
//     garbage collector are never shut out) and trap there once the host
//     has set the stop flag the copy exports as __latch_stop; the host sets
//     it when the call's context ends (stop.go), and discards the instance.
//     A module the rewriter cannot handle (a start function, instructions
//     beyond WebAssembly 2.0) runs instead under wazero's
//     CloseOnContextDone, which checks at every loop header, and Load logs
//     a warning; either way a stopped call fails with the same error;
//   - with messages (payload, reply, describe message, host_call request
//     and answer) bounded by MaxMessageBytes (1 MiB by default), log
//     messages cut at MaxLogBytes and random requests bounded by
//     MaxRandomBytes;
//   - in a WASI sandbox with no file system, no arguments and no sockets,
//     an environment of GOGC=400 and GOMEMLIMIT (three quarters of the
//     memory cap; see sandbox), and with real time and randomness only when the
//     clock and random capabilities are granted (otherwise a fake clock and
//     a deterministic source); its standard output and error go to the
//     logger (at info and warn, a line per record, 64 KiB per instance),
//     and its sleep returns at once (so that a sleeping guest spins on the
//     clock, which the deadline stops, instead of blocking the host).
//
// Every pointer and length a guest hands the host, in a reply or a host
// function's arguments, is checked against its memory; a guest that breaks
// the convention gets an error (ErrBadReply, ErrBadHostCall), never a host
// panic.
//
// # Errors
//
// Load's errors name the module ("module x: not a Latch ABI v1 module
// (missing export latch_abi_v1)", "module x imports latch_v1.host_call,
// which requires a grant the operator did not give (...)"). Call's errors
// start with "plugin/<id>: " and carry a kernel/fault code: Timeout for a
// deadline, Canceled for a canceled context, Internal for a trap, a memory
// cap or a broken convention, Unavailable for an exhausted pool or a
// closed module. The sentinel errors in errors.go tell the causes apart.
//
// # Metrics
//
// Labelled by module id (and kind or reason), registered on
// Options.Registerer:
//
//	latch_wasm_calls_total                counter
//	latch_wasm_call_errors_total          counter, by kind (trap, timeout, canceled, memory_limit,
//	                                      bad_reply, bad_host_call, host_call, too_large,
//	                                      unavailable, closed, instantiate)
//	latch_wasm_call_duration_seconds      histogram (waiting for an instance included)
//	latch_wasm_instances                  gauge (live instances)
//	latch_wasm_instances_idle             gauge
//	latch_wasm_instances_discarded_total  counter, by reason (the error kind)
//
// # Decisions
//
// Why does a host function panic? A host function stops its guest by
// panicking with an error (trap in hostfuncs.go): that is wazero's
// mechanism (its own WASI proc_exit does the same), and wazero recovers the
// panic in the export call and returns the error from it. The panic never
// leaves wazero, so it never reaches the request path.
//
// Why one wazero runtime per module? The memory cap is a runtime setting,
// and each module's host functions close over its own options; the
// compiled code is still shared through the one compilation cache.
//
// Why a reusable call context instead of context.WithTimeout? A timer and a
// cancel tree per call cost as much as the rest of the call; an instance's
// callContext re-arms one timer instead, and is thrown away with its
// instance when it fires (deadline.go).
//
// Why is latch_buffer not called on every call? abi/SPEC.md keeps the
// buffer latch_buffer returned valid until the next latch_buffer call
// (section 2.4) and has latch_handle read the call at the last latch_buffer
// pointer (section 2.1), so the host writes a call that fits into the
// buffer it already holds, never more than the size it asked for; it asks
// again only for a larger call or after a host_call answer took a buffer of
// its own size. Section 2.3 shows the plain sequence, latch_buffer on every
// call; skipping the redundant ones halves the transitions into the guest
// (instance.buffer is the one place to change should the contract forbid
// it).
//
// Why a stop flag of our own instead of wazero's CloseOnContextDone? That
// mode makes the compiled code call out to Go at every loop header, and Go's
// WebAssembly backend puts every function body in a loop, so the check is
// paid on every function call too: a small Go guest call measured 10.8 µs
// with it and 1.8 µs without, and each call also cost a goroutine watching
// the context. The instrumented copy's check is a decrement and a branch
// per loop header. A flag alone would not do: wazero's machine code cannot
// be preempted, so a guest spinning without ever leaving it would stall a
// stop-the-world garbage collection, and with the world stopped no timer
// could run to raise the flag; hence the return to Go (a memory.grow by 0
// pages) every 4096 loop headers. No maintained Go library rewrites
// function bodies, so internal/meter is a small hand-written decoder of
// the instruction set wazero accepts; the instrumented bytes are
// deterministic, so the compilation cache serves them across restarts.
//
// Why is the memory cap a guess in the metrics? wazero reports a failed
// memory.grow to the guest, not to the host; a guest that fails while its
// memory is within one growth step of the cap is counted as memory_limit
// (ErrMemoryLimit), any other failure as a trap. Both are fault.Internal.
package wasmhost
