package wasmhost

import (
	"errors"
)

// Sentinel errors, matched with errors.Is. Errors from Load name the module
// ("module x: ..."); errors from Call and Describe start with "plugin/<id>: "
// and also carry a kernel/fault code (see Module.Call).
var (
	// ErrInvalidModule: the bytes are not a WebAssembly module wazero can
	// compile, or the module's imports or exports do not fit the Latch ABI.
	ErrInvalidModule = errors.New("invalid WebAssembly module")
	// ErrNotLatchModule: the module lacks the latch_abi_v1 marker export, so
	// it was not built for Latch ABI v1.
	ErrNotLatchModule = errors.New("not a Latch ABI v1 module")
	// ErrNotGranted: the module imports a host function whose capability
	// the operator did not grant.
	ErrNotGranted = errors.New("requires a grant the operator did not give")
	// ErrDuplicate: a module with the same id is already loaded.
	ErrDuplicate = errors.New("already loaded")
	// ErrClosed: the module or the host is closed.
	ErrClosed = errors.New("closed")

	// ErrTooLarge: a payload, reply, describe message or host_call message
	// is longer than ModuleOptions.MaxMessageBytes.
	ErrTooLarge = errors.New("message too large")
	// ErrPoolExhausted: every instance stayed busy until the caller's
	// context ended.
	ErrPoolExhausted = errors.New("no free instance")
	// ErrTrapped: the guest trapped (unreachable, an out-of-bounds access, a
	// Go panic that exited the guest, ...). The instance is discarded.
	ErrTrapped = errors.New("guest trapped")
	// ErrMemoryLimit: the guest failed while its memory was at its cap
	// (ModuleOptions.MemoryLimitPages). The instance is discarded.
	ErrMemoryLimit = errors.New("guest failed at its memory limit")
	// ErrBadReply: the guest broke the calling convention: a buffer or reply
	// outside its memory, a reply over the size limit, no buffer. The
	// instance is discarded.
	ErrBadReply = errors.New("guest broke the calling convention")
	// ErrBadHostCall: the guest passed a host function a range outside its
	// memory or over a limit, or called host_call where it is not allowed.
	// The host traps the guest and discards the instance.
	ErrBadHostCall = errors.New("guest misused a host function")
	// ErrHostCallFailed: the HostCaller returned an error (or panicked), so
	// host_call had no answer to give. The host fails the guest's call
	// with that error's fault code and discards the instance.
	ErrHostCallFailed = errors.New("host_call failed")
)
