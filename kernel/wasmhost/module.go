package wasmhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/latchid/latch/kernel/fault"
)

// Defaults for the zero fields of ModuleOptions.
const (
	// DefaultMemoryLimitPages caps an instance at 64 MiB.
	DefaultMemoryLimitPages = 1024
	// DefaultCallTimeout is the deadline of one call.
	DefaultCallTimeout = time.Second
	// DefaultInitTimeout bounds creating one instance, _initialize included.
	DefaultInitTimeout = 10 * time.Second
	// DefaultMaxMessageBytes bounds payloads, replies and host_call
	// messages: 1 MiB, the contract's largest message. Mirrors abi/SPEC.md
	// (abi.MaxMessageSize).
	DefaultMaxMessageBytes = 1 << 20
)

const (
	// maxMemoryPages is the most pages a 32-bit memory can have (4 GiB).
	maxMemoryPages = 65536
	// pageSize is the size of a WebAssembly memory page.
	pageSize = 65536
	// maxMessageBytes bounds MaxMessageBytes, so that every message length
	// fits the i32 of the calling convention with room to spare.
	maxMessageBytes = 1 << 30
)

// ModuleOptions configures one loaded module. The zero value gives the
// defaults above, one warm instance, at most GOMAXPROCS instances, and no
// capabilities.
type ModuleOptions struct {
	// MinInstances is how many instances Load creates up front; the pool
	// keeps them warm and replaces a discarded one lazily, on the next call
	// that finds no idle instance. Zero means 1.
	MinInstances int
	// MaxInstances bounds the instances, and so the calls running at once;
	// a call beyond it waits for a free instance until its context ends.
	// Zero means max(MinInstances, GOMAXPROCS).
	MaxInstances int
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB pages;
	// a guest that needs more fails and its instance is discarded. The
	// host's worst case is MaxInstances × MemoryLimitPages × 64 KiB. Zero
	// means DefaultMemoryLimitPages; at most 65536.
	MemoryLimitPages uint32
	// CallTimeout is the deadline of each call (the host_calls it makes
	// included); a guest still running at the deadline is stopped and its
	// instance discarded. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// InitTimeout bounds creating one instance, the guest's _initialize
	// (and, for the first, latch_describe) included. Zero means
	// DefaultInitTimeout.
	InitTimeout time.Duration
	// MaxMessageBytes bounds a payload, a reply, the describe message, and
	// a host_call request and answer. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Grants lists the capabilities the operator granted the module (the
	// abi.Capability… names: "log", "clock", "random", and those served
	// through host_call: "config", "kv", "secrets", "userlookup", "audit",
	// "http"). Nothing is granted by default. A module importing a host
	// function whose capability is not granted is refused at load; for
	// host_call any one of its capabilities allows the import, and the
	// HostCaller checks each request against the grants.
	Grants []string
	// HostCaller answers the guest's host_call; required when Grants holds
	// a capability served through host_call.
	HostCaller HostCaller
}

// HostCaller answers a guest's host_call: the capability-gated way for a
// guest to reach the kernel (configuration, its key-value space, secrets,
// users, audit, outbound HTTP). req is the guest's HostCall envelope and
// the answer its HostReply envelope (abi/SPEC.md); the implementation
// checks each request against the module's grants and encodes a refusal
// (CodeForbidden) or a failure as an error in the HostReply. An empty
// answer is a success with no payload.
//
// A returned error means the host could not answer at all: the guest's
// call fails with the error's fault code (kernel/fault) and its instance
// is discarded, so keep errors for what the HostReply cannot say. ctx
// carries the call's deadline and the caller's values, and must not be
// kept after HostCall returns; req is the implementation's to keep.
type HostCaller interface {
	HostCall(ctx context.Context, module string, req []byte) ([]byte, error)
}

// HostCallerFunc adapts a function to HostCaller.
type HostCallerFunc func(ctx context.Context, module string, req []byte) ([]byte, error)

// HostCall calls f.
func (f HostCallerFunc) HostCall(ctx context.Context, module string, req []byte) ([]byte, error) {
	return f(ctx, module, req)
}

// resolve fills in the defaults and checks the options.
func (o ModuleOptions) resolve(id string) (ModuleOptions, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("module %s: invalid options: %s", id, fmt.Sprintf(format, args...))
	}
	if o.MinInstances < 0 || o.MaxInstances < 0 || o.MaxMessageBytes < 0 || o.CallTimeout < 0 || o.InitTimeout < 0 {
		return o, bad("negative value")
	}
	if o.MinInstances == 0 {
		o.MinInstances = 1
	}
	if o.MaxInstances == 0 {
		o.MaxInstances = max(o.MinInstances, runtime.GOMAXPROCS(0))
	}
	if o.MinInstances > o.MaxInstances {
		return o, bad("MinInstances %d is more than MaxInstances %d", o.MinInstances, o.MaxInstances)
	}
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if o.MemoryLimitPages > maxMemoryPages {
		return o, bad("MemoryLimitPages %d is more than %d", o.MemoryLimitPages, maxMemoryPages)
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxMessageBytes > maxMessageBytes {
		return o, bad("MaxMessageBytes %d is more than %d", o.MaxMessageBytes, maxMessageBytes)
	}
	grants := make([]string, 0, len(o.Grants))
	for _, g := range o.Grants {
		if !knownCapability(g) {
			return o, bad("unknown capability %q", g)
		}
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	o.Grants = grants // a copy: the caller's slice may change after Load
	if ok, _ := (hostFunction{name: importHostCall}).granted(grants); ok && o.HostCaller == nil {
		return o, bad("capabilities served through host_call are granted but HostCaller is nil")
	}
	return o, nil
}

// Module is a loaded module: its compiled code, its describe message and a
// pool of instances. Calls may run concurrently, one per instance. Close
// releases it.
type Module struct {
	id        string
	host      *Host
	opts      ModuleOptions
	logger    *slog.Logger
	met       *moduleMetrics
	runtime   wazero.Runtime
	code      wazero.CompiledModule
	config    wazero.ModuleConfig
	described []byte
	// instrumented is true when the module runs with the host's stop flag
	// (stop.go), false when under wazero's close-on-context-done.
	instrumented bool

	// The pool. idle holds ready instances; slots holds one token per
	// instance that may still be created, so len(idle) + busy + len(slots)
	// is MaxInstances. done is closed by Close.
	idle  chan *instance
	slots chan struct{}
	done  chan struct{}

	// live maps an instance's api.Module to the instance, for the host
	// functions, which wazero hands only the api.Module.
	live sync.Map

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// wasmMagic begins every WebAssembly binary.
var wasmMagic = []byte("\x00asm")

// Load compiles wasm (or takes it from the compilation cache), checks that
// it is a Latch ABI v1 module whose imports are all provided and granted,
// creates opts.MinInstances instances, and reads the module's describe
// message from the first. id names the module in errors, logs and metrics;
// it must be unique in the host. Load refuses:
//
//   - bytes that are not WebAssembly, or that wazero cannot compile
//     (ErrInvalidModule);
//   - a module without the latch_abi_v1 export (ErrNotLatchModule), or
//     without the other required exports with their signatures, or without
//     an exported memory (ErrInvalidModule);
//   - a module importing from anything but latch_v1 and
//     wasi_snapshot_preview1, importing an unknown latch_v1 function or one
//     with the wrong signature, or importing a memory (ErrInvalidModule);
//   - a module importing a host function whose capability opts.Grants does
//     not hold (ErrNotGranted);
//   - a module whose instances cannot be created in opts.InitTimeout, or
//     whose describe message breaks the convention.
func (h *Host) Load(ctx context.Context, id string, wasm []byte, opts ModuleOptions) (*Module, error) {
	if id == "" {
		return nil, errors.New("loading a wasm module: empty id")
	}
	opts, err := opts.resolve(id)
	if err != nil {
		return nil, err
	}
	if err := h.reserve(id); err != nil {
		return nil, err
	}
	m, err := h.load(ctx, id, wasm, opts)
	if err != nil {
		h.settle(id, nil)
		return nil, err
	}
	if !h.settle(id, m) {
		_ = m.Close(ctx)
		return nil, fmt.Errorf("module %s: loading into a closed host: %w", id, ErrClosed)
	}
	return m, nil
}

func (h *Host) load(ctx context.Context, id string, wasm []byte, opts ModuleOptions) (_ *Module, err error) {
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, fmt.Errorf("module %s: %w: the file does not begin with the WebAssembly magic number \\0asm", id, ErrInvalidModule)
	}
	logger := h.logger.With(slog.String("module", id))
	code, instrumented, err := h.instrument(ctx, id, wasm, logger)
	if err != nil {
		return nil, err
	}
	m := &Module{
		id:           id,
		host:         h,
		opts:         opts,
		logger:       logger,
		met:          h.metrics.forModule(id),
		runtime:      wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(instrumented, opts.MemoryLimitPages)),
		idle:         make(chan *instance, opts.MaxInstances),
		slots:        make(chan struct{}, opts.MaxInstances),
		done:         make(chan struct{}),
		config:       sandbox(opts.Grants, opts.MemoryLimitPages),
		instrumented: instrumented,
	}
	defer func() {
		if err != nil {
			_ = m.runtime.Close(ctx)
			h.metrics.forget(id)
		}
	}()
	m.code, err = m.runtime.CompileModule(ctx, code)
	if err != nil && instrumented {
		// Report the module's own error, not the instrumented copy's, and
		// run it under wazero's check should only the copy fail.
		_ = m.runtime.Close(ctx)
		m.instrumented = false
		m.runtime = wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig(false, opts.MemoryLimitPages))
		if m.code, err = m.runtime.CompileModule(ctx, wasm); err == nil {
			logger.WarnContext(ctx, "the instrumented module does not compile; running it under wazero's slower deadline check")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("module %s: %w: compiling: %w", id, ErrInvalidModule, err)
	}
	if err := checkModule(id, m.code, opts.Grants); err != nil {
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.runtime); err != nil {
		return nil, fmt.Errorf("module %s: providing WASI: %w", id, err)
	}
	if err := m.defineHostFunctions(ctx); err != nil {
		return nil, fmt.Errorf("module %s: providing host functions: %w", id, err)
	}
	for range opts.MaxInstances - opts.MinInstances {
		m.slots <- struct{}{}
	}
	for i := range opts.MinInstances {
		in, err := m.newInstance(ctx)
		if err != nil {
			return nil, fmt.Errorf("module %s: creating an instance: %w", id, err)
		}
		if i == 0 {
			if m.described, err = m.describe(ctx, in); err != nil {
				m.discard(in, "")
				return nil, fmt.Errorf("module %s: reading its description: %w", id, err)
			}
		}
		m.idle <- in
		m.met.idle.Inc()
	}
	return m, nil
}

// sandbox returns the WASI configuration of every instance: no arguments,
// no environment, no file system, no sockets; real time only with the clock
// capability and real randomness only with the random capability
// (abi/SPEC.md section 2.2), otherwise wazero's stand-ins: a fake clock
// that moves 1 ms per reading and a deterministic random source. There is
// never a real sleep: a guest's sleep returns at once and the guest
// busy-waits on the clock instead, which the call deadline stops, where a
// host-side sleep could not be interrupted.
//
// The environment holds two variables only, read by the runtime of Go
// guests (others ignore them): GOGC=400 and GOMEMLIMIT at three quarters of
// the instance's memory cap. A pooled instance's live heap is small and
// every call leaves garbage; with Go's default (a collection each time the
// heap doubles, from a 4 MiB floor) a small call paid for frequent
// stop-the-world collections. GOGC=400 collects when the heap is five times
// the live heap (from a 16 MiB floor), which cut a small call from 18.8 to
// about 7 µs, and GOMEMLIMIT makes the runtime collect harder before the
// cap rather than fail at it. (GOGC=off measured the same, but let every
// instance's memory grow to the limit.)
func sandbox(grants []string, memoryLimitPages uint32) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(exportInitialize).
		WithEnv("GOGC", "400").
		WithEnv("GOMEMLIMIT", strconv.FormatUint(uint64(memoryLimitPages)*pageSize/4*3, 10))
	if slices.Contains(grants, capClock) {
		cfg = cfg.WithSysWalltime().WithSysNanotime()
	}
	if slices.Contains(grants, capRandom) {
		cfg = cfg.WithRandSource(rand.Reader)
	}
	return cfg
}

// checkModule checks a compiled module's exports and imports against the
// calling convention and the grants.
func checkModule(id string, code wazero.CompiledModule, grants []string) error {
	exports := code.ExportedFunctions()
	for _, want := range requiredExports {
		def, ok := exports[want.name]
		switch {
		case !ok && want.name == exportMarker:
			return fmt.Errorf("module %s: %w (missing export %s)", id, ErrNotLatchModule, exportMarker)
		case !ok:
			return fmt.Errorf("module %s: %w: missing export %s", id, ErrInvalidModule, want.name)
		case !want.sig.matches(def):
			return fmt.Errorf("module %s: %w: export %s has signature %s, want %s",
				id, ErrInvalidModule, want.name, defSignature(def), want.sig)
		}
	}
	if _, ok := code.ExportedMemories()[exportMemory]; !ok {
		return fmt.Errorf("module %s: %w: missing export %s (a memory)", id, ErrInvalidModule, exportMemory)
	}
	for _, def := range code.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case wasiModule:
			// Provided by wazero; an unknown WASI name fails instantiation.
		case hostModule:
			f, known := lookupHostFunction(name)
			if !known {
				return fmt.Errorf("module %s: %w: imports %s.%s, which the host does not provide", id, ErrInvalidModule, mod, name)
			}
			if !f.sig.matches(def) {
				return fmt.Errorf("module %s: %w: imports %s.%s with signature %s, want %s",
					id, ErrInvalidModule, mod, name, defSignature(def), f.sig)
			}
			if ok, needs := f.granted(grants); !ok {
				return fmt.Errorf("module %s imports %s.%s, which %w (%s)", id, mod, name, ErrNotGranted, needs)
			}
		default:
			return fmt.Errorf("module %s: %w: imports %s.%s from a module the host does not provide (only %s and %s)",
				id, ErrInvalidModule, mod, name, hostModule, wasiModule)
		}
	}
	for _, def := range code.ImportedMemories() {
		mod, name, _ := def.Import()
		return fmt.Errorf("module %s: %w: imports memory %s.%s; a module must define its own", id, ErrInvalidModule, mod, name)
	}
	return nil
}

// ID returns the module's id.
func (m *Module) ID() string {
	return m.id
}

// Describe returns a copy of the module's describe message, which Load read
// once from latch_describe (abi/SPEC.md: the host calls it once, at load);
// nil when the module describes itself with an empty message. It does not
// call the guest; ctx is for symmetry with Call.
func (m *Module) Describe(ctx context.Context) ([]byte, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("plugin/%s: %w", m.id, fault.Unavailable.WithCause(fmt.Errorf("describing: the module is %w", ErrClosed)))
	}
	return bytes.Clone(m.described), nil
}

// describe calls latch_describe on in, which is not in the pool.
func (m *Module) describe(ctx context.Context, in *instance) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.InitTimeout)
	defer cancel()
	var msg []byte
	err := in.guarded(ctx, func() (err error) {
		msg, err = in.describe(ctx, m.opts.MaxMessageBytes)
		return err
	})
	return msg, err
}

// Call sends payload to the guest's latch_handle and returns a copy of its
// reply (nil when empty). It takes an idle instance from the pool, creating
// one when none is idle and the pool is below MaxInstances, or waits for
// one while ctx lasts. The call runs under ctx and the CallTimeout deadline.
//
// An error starts with "plugin/<id>: " and carries a kernel/fault code:
//
//   - fault.Timeout: the guest ran past its deadline and was stopped;
//   - fault.Canceled: ctx was canceled (before or while the guest ran);
//   - fault.Internal: the guest trapped (ErrTrapped), failed at its memory
//     cap (ErrMemoryLimit), broke the calling convention (ErrBadReply) or
//     misused a host function (ErrBadHostCall);
//   - the HostCaller's fault (Internal by default): the HostCaller failed a
//     host_call (ErrHostCallFailed);
//   - fault.Unavailable: no instance became free before ctx ended
//     (ErrPoolExhausted), or the module is closed (ErrClosed);
//   - fault.InvalidRequest: payload is over MaxMessageBytes (ErrTooLarge).
//
// After any error that involved the guest, its instance is discarded and
// never reused; the pool replaces it on demand.
func (m *Module) Call(ctx context.Context, payload []byte) ([]byte, error) {
	m.met.calls.Inc()
	start := time.Now()
	out, kind, err := m.run(ctx, start, payload)
	m.met.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		m.met.errors[kind].Inc()
		return nil, fmt.Errorf("plugin/%s: %w", m.id, err)
	}
	return out, nil
}

// run makes one call on one instance and returns the error kind with the
// error.
func (m *Module) run(ctx context.Context, start time.Time, payload []byte) ([]byte, string, error) {
	if len(payload) > m.opts.MaxMessageBytes {
		return nil, kindTooLarge, fault.InvalidRequest.WithCause(fmt.Errorf("%w: a payload of %d bytes is over the %d-byte limit",
			ErrTooLarge, len(payload), m.opts.MaxMessageBytes))
	}
	if err := ctx.Err(); err != nil {
		return nil, kindCanceled, fault.From(err)
	}
	in, kind, err := m.acquire(ctx)
	if err != nil {
		return nil, kind, err
	}
	if in.ctx == nil {
		var onFire func()
		if in.stop != nil {
			onFire = in.raiseStop
		}
		in.ctx = newCallContext(onFire)
	}
	in.ctx.arm(ctx, start, m.opts.CallTimeout)
	out, err := in.handle(in.ctx, payload, m.opts.MaxMessageBytes)
	reusable := in.ctx.disarm()
	if err != nil {
		kind, err := m.classify(in, err)
		m.discard(in, kind)
		return nil, kind, err
	}
	if !reusable {
		// The deadline or the caller's context ended just as the call
		// finished: the reply stands, but wazero may yet close the
		// instance, so it is not reused.
		m.discard(in, "")
		return out, "", nil
	}
	m.release(in)
	return out, "", nil
}

// classify turns the error of a call on in into a kind and a fault.
func (m *Module) classify(in *instance, err error) (string, error) {
	if m.closed.Load() {
		return kindClosed, fault.Unavailable.WithCause(fmt.Errorf("calling the guest: the module was %w meanwhile: %w", ErrClosed, err))
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return kindTimeout, fault.Timeout.WithCause(fmt.Errorf("stopping the guest at its deadline (call timeout %s): %w", m.opts.CallTimeout, err))
		case sys.ExitCodeContextCanceled:
			return kindCanceled, fault.Canceled.WithCause(fmt.Errorf("stopping the guest: %w", err))
		}
	}
	switch {
	case errors.Is(err, ErrHostCallFailed):
		return kindHostCall, fault.From(err)
	case errors.Is(err, ErrBadHostCall):
		return kindBadHostCall, fault.Internal.WithCause(err)
	case errors.Is(err, ErrBadReply):
		return kindBadReply, fault.Internal.WithCause(err)
	}
	if pages, limit, at := in.atMemoryLimit(m.opts.MemoryLimitPages); at {
		return kindMemoryLimit, fault.Internal.WithCause(fmt.Errorf("%w (%d of %d pages): %w", ErrMemoryLimit, pages, limit, err))
	}
	return kindTrap, fault.Internal.WithCause(fmt.Errorf("%w: %w", ErrTrapped, err))
}

// acquire takes an idle instance, creates one when a slot is free, or waits
// for either while ctx lasts.
func (m *Module) acquire(ctx context.Context) (*instance, string, error) {
	if m.closed.Load() {
		return nil, kindClosed, fault.Unavailable.WithCause(fmt.Errorf("calling the guest: the module is %w", ErrClosed))
	}
	select {
	case in := <-m.idle:
		m.met.idle.Dec()
		return in, "", nil
	default:
	}
	select {
	case in := <-m.idle:
		m.met.idle.Dec()
		return in, "", nil
	case <-m.slots:
		in, err := m.newInstance(ctx)
		if err != nil {
			m.slots <- struct{}{}
			if m.closed.Load() {
				return nil, kindClosed, fault.Unavailable.WithCause(fmt.Errorf("calling the guest: the module is %w", ErrClosed))
			}
			f := fault.Internal
			if ctx.Err() != nil {
				f = fault.From(ctx.Err())
			}
			return nil, kindInstantiate, f.WithCause(fmt.Errorf("creating an instance: %w", err))
		}
		return in, "", nil
	case <-ctx.Done():
		return nil, kindUnavailable, fault.Unavailable.WithCause(fmt.Errorf("%w: all %d instances stayed busy: %w",
			ErrPoolExhausted, m.opts.MaxInstances, context.Cause(ctx)))
	case <-m.done:
		return nil, kindClosed, fault.Unavailable.WithCause(fmt.Errorf("calling the guest: the module is %w", ErrClosed))
	}
}

// release returns a healthy instance to the pool.
func (m *Module) release(in *instance) {
	if m.closed.Load() {
		m.discard(in, "")
		return
	}
	m.met.idle.Inc()
	m.idle <- in // never blocks: the channel holds MaxInstances
}

// discard closes an instance after a failure (reason is the error kind), or
// at Close or after a late deadline (reason ""), and frees its slot.
func (m *Module) discard(in *instance, reason string) {
	m.live.Delete(in.mod)
	_ = in.mod.Close(context.Background()) // the module may already be closed; nothing to report
	in.out.flush()
	m.met.instances.Dec()
	if reason != "" {
		m.met.discarded[reason].Inc()
		m.logger.Debug("discarded an instance", slog.String("reason", reason))
	}
	m.slots <- struct{}{} // never blocks: the channel holds MaxInstances
}

// newInstance instantiates the module, running its _initialize under the
// init timeout.
func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.InitTimeout)
	defer cancel()
	out := newGuestOutput(m.logger)
	cfg := m.config.WithStdout(out.stdout()).WithStderr(out.stderr())
	if m.instrumented {
		// The host calls _initialize itself, with the stop flag armed.
		cfg = cfg.WithStartFunctions()
	}
	mod, err := m.runtime.InstantiateModule(ctx, m.code, cfg)
	if err != nil {
		out.flush()
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	var stop api.MutableGlobal
	if m.instrumented {
		if stop, err = stopFlag(mod); err == nil {
			err = (&instance{mod: mod, stop: stop}).initialize(ctx)
		}
		if err != nil {
			_ = mod.Close(ctx)
			out.flush()
			return nil, fmt.Errorf("instantiating: %w", err)
		}
	}
	if mod.IsClosed() { // _initialize called proc_exit(0)
		out.flush()
		return nil, fmt.Errorf("instantiating: %w: the guest exited during initialisation", ErrTrapped)
	}
	in := &instance{
		stop:      stop,
		mod:       mod,
		mem:       mod.ExportedMemory(exportMemory),
		bufferFn:  mod.ExportedFunction(exportBuffer),
		handleFn:  mod.ExportedFunction(exportHandle),
		describFn: mod.ExportedFunction(exportDescribe),
		stack:     make([]uint64, 1),
		ansStack:  make([]uint64, 1),
		out:       out,
	}
	m.live.Store(mod, in)
	m.met.instances.Inc()
	return in, nil
}

// Close closes the module: idle instances at once, busy ones by failing
// their calls with ErrClosed. It removes the module from its host and its
// series from the metrics.
func (m *Module) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.done)
	drain:
		for {
			select {
			case in := <-m.idle:
				m.met.idle.Dec()
				m.discard(in, "")
			default:
				break drain
			}
		}
		// Busy instances: wazero's close-on-context-done stops those of a
		// module that is not instrumented when the runtime closes; the
		// others stop at their flag.
		m.live.Range(func(_, v any) bool {
			if in, ok := v.(*instance); ok && in.stop != nil {
				in.raiseStop()
			}
			return true
		})
		if err := m.runtime.Close(ctx); err != nil {
			m.closeErr = fmt.Errorf("plugin/%s: closing: %w", m.id, err)
		}
		m.host.forget(m.id, m)
		m.host.metrics.forget(m.id)
	})
	return m.closeErr
}

var _ HostCaller = HostCallerFunc(nil)
