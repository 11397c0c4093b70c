package wasmhost

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// phase says which export an instance is in, so that the host functions
// can refuse a call where the convention does not allow it.
type phase uint8

const (
	phaseIdle     phase = iota
	phaseBuffer         // in latch_buffer, before a call
	phaseHandle         // in latch_handle: host_call allowed
	phaseAnswer         // in latch_buffer, for a host_call answer
	phaseDescribe       // in latch_describe
)

// instance is one instantiated guest with its exports looked up once. It is
// used by one call at a time.
type instance struct {
	mod       api.Module
	mem       api.Memory
	bufferFn  api.Function
	handleFn  api.Function
	describFn api.Function
	// stack is the param/result stack of the call's exports; ansStack that
	// of the re-entrant latch_buffer call inside host_call.
	stack, ansStack []uint64
	phase           phase
	out             *guestOutput
	// ctx is the instance's reusable call context; nil until the first
	// call.
	ctx *callContext
	// stop is the stop flag of an instrumented module (stop.go), nil for
	// one that runs under wazero's close-on-context-done.
	stop api.MutableGlobal

	// buf and bufSize are what the last latch_buffer call returned and was
	// asked for; bufOK is false before the first one and after one that
	// returned 0. The convention keeps that buffer valid until the next
	// latch_buffer call, and latch_handle reads the buffer last returned,
	// so a call that fits is written there without asking again.
	buf, bufSize uint32
	bufOK        bool
}

// buffer returns a guest buffer of at least n bytes, calling latch_buffer
// only when the last buffer is too small (or there is none yet). An empty
// call needs no buffer.
func (in *instance) buffer(ctx context.Context, n uint32) (uint32, error) {
	if n == 0 || (in.bufOK && n <= in.bufSize) {
		return in.buf, nil
	}
	in.phase = phaseBuffer
	in.stack[0] = uint64(n)
	err := in.stoppedError(in.bufferFn.CallWithStack(ctx, in.stack))
	in.phase = phaseIdle
	if err != nil {
		return 0, fmt.Errorf("calling %s(%d): %w", exportBuffer, n, err)
	}
	ptr := api.DecodeU32(in.stack[0])
	in.setBuffer(ptr, n)
	if ptr == 0 {
		return 0, fmt.Errorf("%w: %s(%d) returned 0: the guest cannot allocate", ErrBadReply, exportBuffer, n)
	}
	return ptr, nil
}

// setBuffer records what latch_buffer returned for a request of n bytes.
func (in *instance) setBuffer(ptr, n uint32) {
	in.buf, in.bufSize, in.bufOK = ptr, n, ptr != 0
}

// handle writes payload into a guest buffer, calls latch_handle and copies
// the reply out.
func (in *instance) handle(ctx context.Context, payload []byte, limit int) ([]byte, error) {
	n := uint32(len(payload)) //nolint:gosec // len(payload) <= MaxMessageBytes <= 1 GiB, checked by the caller
	ptr, err := in.buffer(ctx, n)
	if err != nil {
		return nil, err
	}
	if !in.mem.Write(ptr, payload) {
		return nil, fmt.Errorf("%w: %s(%d) returned %s, outside the guest's %d-byte memory",
			ErrBadReply, exportBuffer, n, span(ptr, n), in.mem.Size())
	}
	in.phase = phaseHandle
	in.stack[0] = uint64(n)
	err = in.stoppedError(in.handleFn.CallWithStack(ctx, in.stack))
	in.phase = phaseIdle
	if err != nil {
		return nil, fmt.Errorf("calling %s(%d): %w", exportHandle, n, err)
	}
	return in.readReply(exportHandle, in.stack[0], limit)
}

// describe calls latch_describe and copies the message out.
func (in *instance) describe(ctx context.Context, limit int) ([]byte, error) {
	in.phase = phaseDescribe
	err := in.describFn.CallWithStack(ctx, in.stack)
	in.phase = phaseIdle
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", exportDescribe, err)
	}
	return in.readReply(exportDescribe, in.stack[0], limit)
}

// readReply copies the message at the packed address v out of guest memory,
// after checking its length against limit and its range against the memory.
func (in *instance) readReply(export string, v uint64, limit int) ([]byte, error) {
	ptr, n := unpack(v)
	if n == 0 {
		return nil, nil
	}
	if int64(n) > int64(limit) {
		return nil, fmt.Errorf("%w: %s returned %d bytes, over the %d-byte limit (%w)", ErrBadReply, export, n, limit, ErrTooLarge)
	}
	view, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: %s returned %s, outside the guest's %d-byte memory",
			ErrBadReply, export, span(ptr, n), in.mem.Size())
	}
	return bytes.Clone(view), nil
}

// atMemoryLimit reports whether the instance's memory is within one growth
// step of its cap: a guest that failed there most likely failed to grow.
// The step is 64 pages (4 MiB, the Go runtime's heap arena on wasm), or
// half the cap when that is smaller.
func (in *instance) atMemoryLimit(limit uint32) (pages, capPages uint32, at bool) {
	capPages = limit
	if declared, ok := in.mem.Definition().Max(); ok && declared < capPages {
		capPages = declared
	}
	pages = in.mem.Size() / pageSize
	step := min(64, capPages/2)
	return pages, capPages, pages+step >= capPages
}
