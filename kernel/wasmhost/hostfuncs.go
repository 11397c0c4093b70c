package wasmhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// defineHostFunctions instantiates the latch_v1 host module with the
// functions the grants allow; checkModule has already refused a module
// that imports any other.
func (m *Module) defineHostFunctions(ctx context.Context) error {
	b := m.runtime.NewHostModuleBuilder(hostModule)
	for _, f := range hostFunctions {
		if ok, _ := f.granted(m.opts.Grants); !ok {
			continue
		}
		var fn api.GoModuleFunc
		switch f.name {
		case importLog:
			fn = m.hostLog
		case importNow:
			fn = hostNow
		case importRandom:
			fn = hostRandom
		case importHostCall:
			fn = m.hostCall
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, f.sig.params, f.sig.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// trap stops the guest from inside a host function. Panicking is how a
// wazero host function traps its caller: wazero recovers the panic in the
// export call that led here, unwinds the guest and returns err (wrapped
// with %w) from that call, where classify sees it. The panic never leaves
// wazero, so it never reaches the request path; see doc.go.
func trap(err error) {
	panic(err)
}

// guestBytes returns the guest memory view of [ptr, ptr+n), trapping the
// guest when the range is outside its memory. fn names the host function
// for the error.
func guestBytes(mod api.Module, fn string, ptr, n uint32) []byte {
	mem := mod.ExportedMemory(exportMemory)
	if mem == nil {
		trap(fmt.Errorf("%w: %s: the guest exports no memory", ErrBadHostCall, fn))
	}
	view, ok := mem.Read(ptr, n)
	if !ok {
		trap(fmt.Errorf("%w: %s: %s is outside the guest's %d-byte memory", ErrBadHostCall, fn, span(ptr, n), mem.Size()))
	}
	return view
}

// logLevel maps a guest's log level to slog's: a level between two of the
// contract's counts as the lower one, and one below debug as debug.
func logLevel(level int32) slog.Level {
	switch {
	case level >= logLevelError:
		return slog.LevelError
	case level >= logLevelWarn:
		return slog.LevelWarn
	case level >= logLevelInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// hostLog implements log(level i32, ptr i32, len i32).
func (m *Module) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := logLevel(api.DecodeI32(stack[0]))
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	view := guestBytes(mod, importLog, ptr, n)
	truncated := len(view) > MaxLogBytes
	if truncated {
		view = view[:MaxLogBytes]
	}
	msg := strings.ToValidUTF8(string(view), "\uFFFD")
	if truncated {
		m.logger.LogAttrs(ctx, level, msg, slog.Bool("truncated", true))
		return
	}
	m.logger.LogAttrs(ctx, level, msg)
}

// hostNow implements now_unix_nanos() -> i64.
func hostNow(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(time.Now().UnixNano())
}

// hostRandom implements random(ptr i32, len i32).
func hostRandom(_ context.Context, mod api.Module, stack []uint64) {
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if n > MaxRandomBytes {
		trap(fmt.Errorf("%w: %s: %d bytes asked for, over the %d-byte limit", ErrBadHostCall, importRandom, n, MaxRandomBytes))
	}
	_, _ = rand.Read(guestBytes(mod, importRandom, ptr, n)) // crypto/rand.Read never fails (it crashes the program instead)
}

// hostCall implements host_call(ptr i32, len i32) -> i64: it copies the
// request out, asks the HostCaller, has the guest provide room for the
// answer by calling latch_buffer re-entrantly, writes the answer there and
// returns it packed (0 for an empty answer, which needs no buffer).
//
// It traps the guest when called outside latch_handle (or from within
// another host_call), with a request outside its memory or over the limit,
// when the guest cannot provide a buffer, and when the HostCaller fails
// (ErrHostCallFailed).
func (m *Module) hostCall(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	v, _ := m.live.Load(mod)
	in, _ := v.(*instance)
	if in == nil || in.phase != phaseHandle {
		trap(fmt.Errorf("%w: %s outside %s (during initialisation, %s, %s or another %s)",
			ErrBadHostCall, importHostCall, exportHandle, exportBuffer, exportDescribe, importHostCall))
	}
	if int64(n) > int64(m.opts.MaxMessageBytes) {
		trap(fmt.Errorf("%w: %s: a request of %d bytes is over the %d-byte limit (%w)",
			ErrBadHostCall, importHostCall, n, m.opts.MaxMessageBytes, ErrTooLarge))
	}
	req := bytes.Clone(guestBytes(mod, importHostCall, ptr, n))
	answer, err := m.askHost(ctx, req)
	if err == nil && len(answer) > m.opts.MaxMessageBytes {
		err = fmt.Errorf("%w: an answer of %d bytes is over the %d-byte limit", ErrTooLarge, len(answer), m.opts.MaxMessageBytes)
	}
	if err != nil {
		trap(fmt.Errorf("%w: %w", ErrHostCallFailed, err))
	}
	if len(answer) == 0 {
		stack[0] = 0
		return
	}
	size := uint32(len(answer)) //nolint:gosec // len(answer) <= MaxMessageBytes <= 1 GiB
	in.phase = phaseAnswer
	in.ansStack[0] = uint64(size)
	err = in.stoppedError(in.bufferFn.CallWithStack(ctx, in.ansStack))
	in.phase = phaseHandle
	if err != nil {
		// The guest failed or ran out of time while allocating: the whole
		// call fails with that error.
		trap(fmt.Errorf("%s: calling %s(%d) for the answer: %w", importHostCall, exportBuffer, size, err))
	}
	at := api.DecodeU32(in.ansStack[0])
	in.setBuffer(at, size)
	if at == 0 {
		trap(fmt.Errorf("%w: %s: %s(%d) returned 0: the guest cannot allocate", ErrBadReply, importHostCall, exportBuffer, size))
	}
	if !in.mem.Write(at, answer) {
		trap(fmt.Errorf("%w: %s: %s(%d) returned %s, outside the guest's %d-byte memory",
			ErrBadReply, importHostCall, exportBuffer, size, span(at, size), in.mem.Size()))
	}
	stack[0] = pack(at, size)
}

// askHost calls the HostCaller, turning a panic in it into an error so that
// a host bug fails one call and is logged with its stack.
func (m *Module) askHost(ctx context.Context, req []byte) (answer []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.logger.ErrorContext(ctx, "HostCaller panicked", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("HostCaller panicked: %v", r)
		}
	}()
	return m.opts.HostCaller.HostCall(ctx, m.id, req)
}
