package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/latchid/latch/kernel/wasmhost/internal/meter"
)

// How a guest is stopped at its deadline. Load instruments a module
// (internal/meter): its loops count down a fuel global, return to Go every
// meter.Fuel loop headers (a preemption point for the Go scheduler), and
// trap there when the stop flag the module exports as meter.StopExport is
// set. The host raises the flag when a call's context ends, and compiles
// the module with wazero's close-on-context-done off, which would
// otherwise call out of the guest at every loop header. A module the
// rewriter cannot handle (another proposal's instructions, a start
// function) runs as before, under wazero's own check; Load logs that once.

// instrumentModule is meter.Instrument; the benchmarks replace it to
// measure wazero's own check in the same run.
var instrumentModule = meter.Instrument

// instrument returns the bytes to compile for wasm and whether they were
// instrumented; a module exporting the reserved name, or malformed in a
// way that would make wazero's decoder allocate without bound, is refused.
func (h *Host) instrument(ctx context.Context, id string, wasm []byte, logger *slog.Logger) ([]byte, bool, error) {
	out, err := instrumentModule(wasm)
	switch {
	case err == nil:
		return out, true, nil
	case errors.Is(err, meter.ErrReserved):
		return nil, false, fmt.Errorf("module %s: %w: %w (the host's deadline flag)", id, ErrInvalidModule, err)
	case errors.Is(err, meter.ErrMalformed):
		return nil, false, fmt.Errorf("module %s: %w: compiling: %w", id, ErrInvalidModule, err)
	}
	logger.WarnContext(ctx, "the module cannot take the host's cheap deadline check; running it under wazero's slower one",
		slog.String("reason", err.Error()))
	return wasm, false, nil
}

// runtimeConfig is the wazero configuration of a module: close-on-context-
// done only for a module that is not instrumented.
func (h *Host) runtimeConfig(instrumented bool, memoryLimitPages uint32) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(!instrumented).
		WithMemoryLimitPages(memoryLimitPages)
}

// raiseStop sets the instance's stop flag: the guest traps at its next
// check, within meter.Fuel loop headers. An instance whose flag was raised
// is never reused.
func (in *instance) raiseStop() {
	in.stop.Set(1)
}

// stoppedError returns the error of a guest call that failed: the same
// *sys.ExitError wazero's close-on-context-done gives (context deadline
// exceeded or canceled) when the instance is instrumented and its call
// context has ended, so that the trap at the stop flag reads, counts and
// maps to a fault like wazero's own stop; err itself otherwise, and for
// the host's own errors (a host function's trap), which keep their kind.
func (in *instance) stoppedError(err error) error {
	if err == nil || in.stop == nil || in.ctx == nil {
		return err
	}
	cause := in.ctx.Err()
	if cause == nil || errors.Is(err, ErrHostCallFailed) || errors.Is(err, ErrBadHostCall) || errors.Is(err, ErrBadReply) {
		return err
	}
	return exitError(cause)
}

// exitError is the error wazero's close-on-context-done gives for a context
// that ended with cause.
func exitError(cause error) error {
	if errors.Is(cause, context.DeadlineExceeded) {
		return sys.NewExitError(sys.ExitCodeDeadlineExceeded)
	}
	return sys.NewExitError(sys.ExitCodeContextCanceled)
}

// guarded runs call, a guest call outside Module.Call (initialisation,
// latch_describe) under ctx: on an instrumented instance the stop flag is
// raised when ctx ends. An instance whose flag was raised fails with the
// context's exit error even when call finished, so that it is discarded.
func (in *instance) guarded(ctx context.Context, call func() error) error {
	if in.stop == nil {
		return call()
	}
	stop := context.AfterFunc(ctx, in.raiseStop)
	err := call()
	if !stop() {
		return exitError(ctx.Err())
	}
	return err
}

// initialize calls the guest's _initialize (when it exports one) under ctx,
// as wazero does for a start function: an exit with code 0 closes the
// module and is not an error.
func (in *instance) initialize(ctx context.Context) error {
	init := in.mod.ExportedFunction(exportInitialize)
	if init == nil {
		return nil
	}
	err := in.guarded(ctx, func() error {
		_, err := init.Call(ctx)
		return err
	})
	if err == nil {
		return nil
	}
	_ = in.mod.Close(ctx)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if exit.ExitCode() == 0 {
			return nil
		}
		return err
	}
	return fmt.Errorf("module[] function[%s] failed: %w", exportInitialize, err)
}

// stopFlag returns the stop flag an instrumented module exports.
func stopFlag(mod api.Module) (api.MutableGlobal, error) {
	g, ok := mod.ExportedGlobal(meter.StopExport).(api.MutableGlobal)
	if !ok {
		return nil, fmt.Errorf("the instrumented module exports no mutable %s", meter.StopExport)
	}
	return g, nil
}
