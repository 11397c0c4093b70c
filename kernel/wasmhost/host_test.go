package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/kernel/fault"
)

// recorder is a slog.Handler that keeps the records it gets.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the first record whose message or attributes contain s.
func (r *recorder) find(s string) (slog.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		text := rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			text += " " + a.String()
			return true
		})
		if strings.Contains(text, s) {
			return rec, true
		}
	}
	return slog.Record{}, false
}

var _ slog.Handler = (*recorder)(nil)

// testHost is a Host with a recording logger and its own registry.
type testHost struct {
	*Host
	log *recorder
	reg *prometheus.Registry
}

func newTestHost(t testing.TB, opts Options) *testHost {
	t.Helper()
	th := &testHost{log: &recorder{}, reg: prometheus.NewRegistry()}
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCacheDir(t)
	}
	opts.Logger = slog.New(th.log)
	opts.Registerer = th.reg
	h, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("closing the host: %v", err)
		}
	})
	th.Host = h
	return th
}

func (th *testHost) load(t testing.TB, id string, wasm []byte, opts ModuleOptions) *Module {
	t.Helper()
	m, err := th.Load(context.Background(), id, wasm, opts)
	if err != nil {
		t.Fatalf("loading %s: %v", id, err)
	}
	return m
}

// discarded returns how many instances of module were discarded for reason.
func (th *testHost) discarded(module, reason string) float64 {
	return testutil.ToFloat64(th.metrics.discarded.WithLabelValues(module, reason))
}

// allGrants grants every capability, with a HostCaller that answers
// "answer to <request>".
func allGrants(o ModuleOptions) ModuleOptions {
	o.Grants = []string{"log", "clock", "random", "config", "kv", "secrets", "userlookup", "audit", "http"}
	o.HostCaller = HostCallerFunc(func(ctx context.Context, module string, req []byte) ([]byte, error) {
		return append([]byte("answer to "), req...), nil
	})
	return o
}

func TestCall(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{MaxInstances: 2}))
	big := append([]byte{'e'}, bytes.Repeat([]byte{'b'}, DefaultMaxMessageBytes-1)...)
	tests := []struct {
		name    string
		payload []byte
		want    []byte
	}{
		{"echo", []byte("ehello"), []byte("ehello")},
		{"echo at the size limit", big, big},
		{"echo after a large call", []byte("esmall"), []byte("esmall")},
		{"empty call, empty reply", nil, nil},
		{"host call", []byte("cfoo"), []byte("answer to foo")},
		{"host calls leave the call intact", []byte("Cbar"), []byte("answer to bar|answer to second|Cbar")},
		{"echo into the buffer of the last answer", []byte("eafter"), []byte("eafter")},
		{"reply larger than the call", []byte("h70000"), make([]byte, 70000)},
		// 1024 pages (the default cap) of 64 KiB, three quarters of it.
		{"the Go runtime collects less often, and harder near the cap", []byte("v"), []byte("GOGC=400,GOMEMLIMIT=50331648")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Call(context.Background(), tt.payload)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Call = %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
	d, err := m.Describe(context.Background())
	if err != nil || string(d) != "multi test guest" {
		t.Errorf("Describe = %q, %v; want %q", d, err, "multi test guest")
	}
}

func TestHostFunctions(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{}))
	before := time.Now()
	out, err := m.Call(context.Background(), []byte("Lhello from the guest"))
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if len(out) != 8+32 {
		t.Fatalf("reply has %d bytes, want 40", len(out))
	}
	now := time.Unix(0, int64(binary.BigEndian.Uint64(out[:8]))) //nolint:gosec // test data
	if now.Before(before.Add(-time.Second)) || now.After(time.Now().Add(time.Second)) {
		t.Errorf("now_unix_nanos gave %v, not near %v", now, before)
	}
	if bytes.Equal(out[8:], make([]byte, 32)) {
		t.Error("random gave 32 zero bytes")
	}
	rec, ok := th.log.find("hello from the guest")
	if !ok {
		t.Fatal("the guest's log message was not logged")
	}
	if rec.Level != slog.LevelInfo {
		t.Errorf("logged at %v, want INFO", rec.Level)
	}
}

// failure is a call that must fail, leave the host serving and discard the
// instance.
type failure struct {
	name     string
	wasm     func(t *testing.T) []byte
	opts     ModuleOptions
	setup    []string // calls made first, which must succeed
	payload  []byte
	wantCode fault.Code
	wantErr  error
	wantKind string
	// next, when set, is a call that must succeed afterwards, with reply
	// nextWant: proof that the module still serves.
	next, nextWant string
}

func multi(t *testing.T) []byte { return guestWasm(t, "multi") }
func raw(t *testing.T) []byte   { return guestWasm(t, "raw") }

func TestCallFailures(t *testing.T) {
	// After a failure, "n" on the multi guest answers "1": a fresh instance
	// (MaxInstances is 1), so the failed one was discarded.
	short := ModuleOptions{MaxInstances: 1, CallTimeout: 300 * time.Millisecond}
	tests := []failure{
		{name: "endless loop stopped at its deadline", wasm: multi, opts: short, payload: []byte("l"),
			wantCode: fault.CodeTimeout, wantErr: context.DeadlineExceeded, wantKind: kindTimeout, next: "n", nextWant: "1"},
		{name: "sleep stopped at its deadline", wasm: multi, opts: short, payload: []byte("s"),
			wantCode: fault.CodeTimeout, wantErr: context.DeadlineExceeded, wantKind: kindTimeout, next: "n", nextWant: "1"},
		{name: "memory hog stopped at the cap", wasm: multi,
			opts:    ModuleOptions{MaxInstances: 1, MemoryLimitPages: 160, CallTimeout: 20 * time.Second},
			payload: []byte("m"), wantCode: fault.CodeInternal, wantErr: ErrMemoryLimit, wantKind: kindMemoryLimit, next: "n", nextWant: "1"},
		{name: "Go panic", wasm: multi, opts: short, setup: []string{"n"}, payload: []byte("p"),
			wantCode: fault.CodeInternal, wantErr: ErrTrapped, wantKind: kindTrap, next: "n", nextWant: "1"},
		{name: "unreachable", wasm: func(*testing.T) []byte { return tinyUnreachable() }, opts: short, payload: []byte("x"),
			wantCode: fault.CodeInternal, wantErr: ErrTrapped, wantKind: kindTrap},
		{name: "reply over the limit", wasm: multi, opts: ModuleOptions{MaxInstances: 1, MaxMessageBytes: 64 << 10},
			payload: []byte("h100000"), wantCode: fault.CodeInternal, wantErr: ErrTooLarge, wantKind: kindBadReply, next: "n", nextWant: "1"},
		{name: "reply pointer outside memory", wasm: raw, opts: short, payload: []byte("g"),
			wantCode: fault.CodeInternal, wantErr: ErrBadReply, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "reply range wrapping past 4 GiB", wasm: raw, opts: short, payload: []byte("w"),
			wantCode: fault.CodeInternal, wantErr: ErrBadReply, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "reply length of 4 GiB", wasm: raw, opts: short, payload: []byte("o"),
			wantCode: fault.CodeInternal, wantErr: ErrTooLarge, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "buffer outside memory", wasm: raw, opts: short, setup: []string{"b"}, payload: bytes.Repeat([]byte("e"), 4096),
			wantCode: fault.CodeInternal, wantErr: ErrBadReply, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "no buffer", wasm: raw, opts: short, setup: []string{"z"}, payload: bytes.Repeat([]byte("e"), 4096),
			wantCode: fault.CodeInternal, wantErr: ErrBadReply, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "log of a range outside memory", wasm: raw, opts: allGrants(short), payload: []byte("l"),
			wantCode: fault.CodeInternal, wantErr: ErrBadHostCall, wantKind: kindBadHostCall, next: "eok", nextWant: "eok"},
		{name: "random over the limit", wasm: raw, opts: allGrants(short), payload: []byte("r"),
			wantCode: fault.CodeInternal, wantErr: ErrBadHostCall, wantKind: kindBadHostCall, next: "eok", nextWant: "eok"},
		{name: "random into a range outside memory", wasm: raw, opts: allGrants(short), payload: []byte("R"),
			wantCode: fault.CodeInternal, wantErr: ErrBadHostCall, wantKind: kindBadHostCall, next: "eok", nextWant: "eok"},
		{name: "host_call of a range outside memory", wasm: raw, opts: allGrants(short), payload: []byte("c"),
			wantCode: fault.CodeInternal, wantErr: ErrBadHostCall, wantKind: kindBadHostCall, next: "eok", nextWant: "eok"},
		{name: "host_call answer buffer outside memory", wasm: raw, opts: allGrants(short), payload: []byte("a"),
			wantCode: fault.CodeInternal, wantErr: ErrBadReply, wantKind: kindBadReply, next: "eok", nextWant: "eok"},
		{name: "payload over the limit", wasm: multi, opts: ModuleOptions{MaxInstances: 1, MaxMessageBytes: 1024},
			payload: bytes.Repeat([]byte("e"), 1025), wantCode: fault.CodeInvalidRequest, wantErr: ErrTooLarge, wantKind: kindTooLarge,
			next: "n", nextWant: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newTestHost(t, Options{})
			opts := tt.opts
			if opts.HostCaller == nil && bytes.Equal(tt.wasm(t), multi(t)) {
				opts = multiOptions(opts)
			}
			if opts.Grants == nil && bytes.Equal(tt.wasm(t), raw(t)) {
				opts = allGrants(opts)
			}
			m := th.load(t, "guest", tt.wasm(t), opts)
			ctx := context.Background()
			for _, s := range tt.setup {
				if _, err := m.Call(ctx, []byte(s)); err != nil {
					t.Fatalf("setup call %q: %v", s, err)
				}
			}
			start := time.Now()
			out, err := m.Call(ctx, tt.payload)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("Call = %.40q, want an error", out)
			}
			t.Logf("error after %s: %.300v", elapsed, err)
			if !strings.HasPrefix(err.Error(), "plugin/guest: ") {
				t.Errorf("error %q does not start with plugin/guest: ", err)
			}
			if got := fault.CodeOf(err); got != tt.wantCode {
				t.Errorf("fault code %q, want %q", got, tt.wantCode)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error does not match %v", tt.wantErr)
			}
			if tt.wantKind == kindTimeout && (elapsed < opts.CallTimeout || elapsed > opts.CallTimeout+5*time.Second) {
				t.Errorf("stopped after %s, want about %s", elapsed, opts.CallTimeout)
			}
			if got := testutil.ToFloat64(th.metrics.errors.WithLabelValues("guest", tt.wantKind)); got != 1 {
				t.Errorf("errors{kind=%s} = %v, want 1", tt.wantKind, got)
			}
			wantDiscarded := 1.0
			if tt.wantKind == kindTooLarge {
				wantDiscarded = 0 // refused before any instance was used
			}
			if got := th.discarded("guest", tt.wantKind); got != wantDiscarded {
				t.Errorf("discarded{reason=%s} = %v, want %v", tt.wantKind, got, wantDiscarded)
			}
			if tt.next == "" {
				return
			}
			got, err := m.Call(ctx, []byte(tt.next))
			if err != nil || string(got) != tt.nextWant {
				t.Errorf("next call %q = %q, %v; want %q", tt.next, got, err, tt.nextWant)
			}
		})
	}
}

func TestGuestPanicIsLogged(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{}))
	if _, err := m.Call(context.Background(), []byte("p")); err == nil {
		t.Fatal("Call succeeded, want a trap")
	}
	rec, ok := th.log.find("panic: multi guest: asked to panic")
	if !ok {
		t.Fatal("the guest's panic message was not logged")
	}
	if rec.Level != slog.LevelWarn {
		t.Errorf("logged at %v, want WARN", rec.Level)
	}
}

func TestDeadlineLeavesOtherCallsAlone(t *testing.T) {
	th := newTestHost(t, Options{})
	const timeout = 500 * time.Millisecond
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{MinInstances: 3, MaxInstances: 3, CallTimeout: timeout}))
	ctx := context.Background()
	loopDone := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := m.Call(ctx, []byte("l"))
		loopDone <- err
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := fmt.Appendf(nil, "e%d-%d", g, i)
				got, err := m.Call(ctx, p)
				if err != nil || !bytes.Equal(got, p) {
					errs <- fmt.Errorf("echo %q = %q, %w", p, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	echoesDone := time.Since(start)
	err := <-loopDone
	elapsed := time.Since(start)
	if !errors.Is(err, fault.Timeout) {
		t.Fatalf("loop call: %v, want a timeout", err)
	}
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("loop stopped after %s, want about %s", elapsed, timeout)
	}
	t.Logf("400 echo calls done after %s, while the loop ran for %s", echoesDone, elapsed)
}

func TestPoolExhausted(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{MaxInstances: 1, CallTimeout: time.Second}))
	loopDone := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), []byte("l"))
		loopDone <- err
	}()
	// Wait until the loop holds the only instance.
	for testutil.ToFloat64(th.metrics.idle.WithLabelValues("multi")) != 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := m.Call(ctx, []byte("ehi"))
	if fault.CodeOf(err) != fault.CodeUnavailable || !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("Call while the pool is busy: %v, want Unavailable and ErrPoolExhausted", err)
	}
	if err := <-loopDone; !errors.Is(err, fault.Timeout) {
		t.Errorf("loop call: %v, want a timeout", err)
	}
	if got, err := m.Call(context.Background(), []byte("ehi")); err != nil || string(got) != "ehi" {
		t.Errorf("Call after the loop = %q, %v", got, err)
	}
}

func TestCanceled(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{MaxInstances: 1, CallTimeout: 10 * time.Second}))
	t.Run("while running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := m.Call(ctx, []byte("l"))
		if fault.CodeOf(err) != fault.CodeCanceled {
			t.Errorf("Call: %v, want Canceled", err)
		}
	})
	t.Run("before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := m.Call(ctx, []byte("ehi"))
		if fault.CodeOf(err) != fault.CodeCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("Call: %v, want Canceled", err)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := m.Call(ctx, []byte("l"))
		if fault.CodeOf(err) != fault.CodeTimeout {
			t.Errorf("Call: %v, want Timeout", err)
		}
	})
	if got, err := m.Call(context.Background(), []byte("ehi")); err != nil || string(got) != "ehi" {
		t.Errorf("Call afterwards = %q, %v", got, err)
	}
}

func TestHostCaller(t *testing.T) {
	errDown := fault.Unavailable.WithMessage("the store is down")
	tests := []struct {
		name     string
		caller   HostCallerFunc
		want     string
		wantCode fault.Code
		wantErr  error
	}{
		{name: "answer", want: "got foo",
			caller: func(ctx context.Context, module string, req []byte) ([]byte, error) {
				if module != "multi" {
					return nil, fmt.Errorf("module %q", module)
				}
				if _, ok := ctx.Deadline(); !ok {
					return nil, errors.New("no deadline")
				}
				return append([]byte("got "), req...), nil
			}},
		{name: "empty answer", want: "",
			caller: func(context.Context, string, []byte) ([]byte, error) { return nil, nil }},
		{name: "caller's values reach the HostCaller", want: "value",
			caller: func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
				v, _ := ctx.Value(ctxKey{}).(string)
				return []byte(v), nil
			}},
		{name: "error", wantCode: fault.CodeUnavailable, wantErr: ErrHostCallFailed,
			caller: func(context.Context, string, []byte) ([]byte, error) { return nil, errDown }},
		{name: "panic", wantCode: fault.CodeInternal, wantErr: ErrHostCallFailed,
			caller: func(context.Context, string, []byte) ([]byte, error) { panic("host bug") }},
		{name: "answer over the limit", wantCode: fault.CodeInternal, wantErr: ErrTooLarge,
			caller: func(context.Context, string, []byte) ([]byte, error) { return make([]byte, 64<<10+1), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newTestHost(t, Options{})
			m := th.load(t, "multi", guestWasm(t, "multi"), ModuleOptions{
				MaxInstances: 1, MaxMessageBytes: 64 << 10, Grants: []string{"log", "clock", "random", "kv"}, HostCaller: tt.caller,
			})
			ctx := context.WithValue(context.Background(), ctxKey{}, "value")
			got, err := m.Call(ctx, []byte("cfoo"))
			if tt.wantErr == nil {
				if err != nil || string(got) != tt.want {
					t.Errorf("Call = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if fault.CodeOf(err) != tt.wantCode || !errors.Is(err, tt.wantErr) {
				t.Errorf("Call: %v; want code %s and %v", err, tt.wantCode, tt.wantErr)
			}
			if got, err := m.Call(context.Background(), []byte("ehi")); err != nil || string(got) != "ehi" {
				t.Errorf("Call afterwards = %q, %v", got, err)
			}
		})
	}
}

type ctxKey struct{}

func TestLoadRefused(t *testing.T) {
	hostCallAtInit := assemble(1, append([]wfunc{importHostCallFunc,
		{name: exportInitialize, export: true, body: cat(i32Const(0), i32Const(0), []byte{opCall, 0, opDrop})}},
		tinyExports(i64Const(0))...)...)
	describeOutside := assemble(1, append(tinyExports(i64Const(0))[:3],
		wfunc{name: exportDescribe, export: true, results: []byte{tI64}, body: i64Const(0x7fff0000<<32 | 16)})...)
	wrongHandle := assemble(1, append(tinyExports(nil)[:2],
		wfunc{name: exportHandle, export: true, params: []byte{tI32}, results: []byte{tI32}, body: i32Const(0)},
		tinyExports(nil)[3])...)
	noDescribe := assemble(1, tinyExports(i64Const(0))[:3]...)
	tests := []struct {
		name    string
		wasm    func(t *testing.T) []byte
		opts    ModuleOptions
		want    string // the whole message, or a part of it when wantSub
		wantSub bool
		wantErr error
	}{
		{name: "no marker", wasm: func(t *testing.T) []byte { return guestWasm(t, "nomarker") },
			want: "module x: not a Latch ABI v1 module (missing export latch_abi_v1)", wantErr: ErrNotLatchModule},
		{name: "host_call not granted", wasm: multi, opts: ModuleOptions{Grants: []string{"log", "clock", "random"}},
			want:    "module x imports latch_v1.host_call, which requires a grant the operator did not give (one of the capabilities config, kv, secrets, userlookup, audit, http)",
			wantErr: ErrNotGranted},
		{name: "log not granted", wasm: multi,
			want: "module x imports latch_v1.log, which requires a grant the operator did not give (capability log)", wantErr: ErrNotGranted},
		{name: "not WebAssembly", wasm: func(*testing.T) []byte { return []byte("#!/bin/sh\necho hello\n") },
			want: "module x: invalid WebAssembly module: the file does not begin with the WebAssembly magic number \\0asm", wantErr: ErrInvalidModule},
		{name: "truncated", wasm: func(t *testing.T) []byte { return multi(t)[:1000] },
			want: "module x: invalid WebAssembly module: compiling: ", wantSub: true, wantErr: ErrInvalidModule},
		{name: "wrong export signature", wasm: func(*testing.T) []byte { return wrongHandle },
			want: "module x: invalid WebAssembly module: export latch_handle has signature (i32) -> (i32), want (i32) -> (i64)", wantErr: ErrInvalidModule},
		{name: "missing export", wasm: func(*testing.T) []byte { return noDescribe },
			want: "module x: invalid WebAssembly module: missing export latch_describe", wantErr: ErrInvalidModule},
		{name: "no memory", wasm: func(*testing.T) []byte { return assemble(0, tinyExports(i64Const(0))...) },
			want: "module x: invalid WebAssembly module: missing export memory (a memory)", wantErr: ErrInvalidModule},
		{name: "foreign import", wasm: func(*testing.T) []byte { return tinyGuest(i64Const(0), wfunc{module: "env", name: "abort"}) },
			want: "module x: invalid WebAssembly module: imports env.abort from a module the host does not provide (only latch_v1 and wasi_snapshot_preview1)", wantErr: ErrInvalidModule},
		{name: "unknown host function", wasm: func(*testing.T) []byte {
			return tinyGuest(i64Const(0), wfunc{module: hostModule, name: "exec"})
		}, want: "module x: invalid WebAssembly module: imports latch_v1.exec, which the host does not provide", wantErr: ErrInvalidModule},
		{name: "host function with the wrong signature", wasm: func(*testing.T) []byte {
			return tinyGuest(i64Const(0), wfunc{module: hostModule, name: importLog, params: []byte{tI32}})
		}, opts: ModuleOptions{Grants: []string{"log"}},
			want: "module x: invalid WebAssembly module: imports latch_v1.log with signature (i32) -> (), want (i32, i32, i32) -> ()", wantErr: ErrInvalidModule},
		{name: "memory below the guest's minimum", wasm: multi, opts: allGrants(ModuleOptions{MemoryLimitPages: 16}),
			want: "module x: invalid WebAssembly module: compiling: ", wantSub: true, wantErr: ErrInvalidModule},
		{name: "host_call during initialisation", wasm: func(*testing.T) []byte { return hostCallAtInit }, opts: allGrants(ModuleOptions{}),
			want: "module x: creating an instance: instantiating: ", wantSub: true, wantErr: ErrBadHostCall},
		{name: "describe message outside memory", wasm: func(*testing.T) []byte { return describeOutside },
			want: "module x: reading its description: ", wantSub: true, wantErr: ErrBadReply},
		{name: "unknown capability", wasm: multi, opts: ModuleOptions{Grants: []string{"root"}},
			want: `module x: invalid options: unknown capability "root"`},
		{name: "host_call capability without a HostCaller", wasm: multi, opts: ModuleOptions{Grants: []string{"kv"}},
			want: "module x: invalid options: capabilities served through host_call are granted but HostCaller is nil"},
		{name: "more minimum than maximum instances", wasm: multi, opts: ModuleOptions{MinInstances: 3, MaxInstances: 2},
			want: "module x: invalid options: MinInstances 3 is more than MaxInstances 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newTestHost(t, Options{})
			_, err := th.Load(context.Background(), "x", tt.wasm(t), tt.opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if tt.wantSub && !strings.HasPrefix(err.Error(), tt.want) || !tt.wantSub && err.Error() != tt.want {
				t.Errorf("Load error:\n%.400v\nwant:\n%s", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Load error does not match %v", tt.wantErr)
			}
			if len(th.Modules()) != 0 {
				t.Errorf("Modules() = %v after a failed Load", th.Modules())
			}
			// The id is free again.
			if _, err := th.Load(context.Background(), "x", tinyEcho(), ModuleOptions{}); err != nil {
				t.Errorf("loading a good module under the same id: %v", err)
			}
		})
	}
}

func TestCompilationCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	ctx := context.Background()
	load := func() {
		t.Helper()
		h, err := New(ctx, Options{CacheDir: dir})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer func() {
			if err := h.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		// The hand-made echo guest: compiling a Go guest under the race
		// detector takes seconds, and the cache works the same for both.
		m, err := h.Load(ctx, "echo", tinyEcho(), ModuleOptions{})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got, err := m.Call(ctx, []byte("ehi")); err != nil || string(got) != "ehi" {
			t.Errorf("Call = %q, %v", got, err)
		}
	}
	load()
	var files int
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if err != nil || files == 0 {
		t.Fatalf("cache folder %s holds %d files (%v) after the first load, want some", dir, files, err)
	}
	// A second host on the same folder (a restart) loads from it.
	load()
}

func TestClose(t *testing.T) {
	th := newTestHost(t, Options{})
	ctx := context.Background()
	a := th.load(t, "a", tinyEcho(), ModuleOptions{})
	b := th.load(t, "b", tinyEcho(), ModuleOptions{})
	if _, err := th.Load(ctx, "a", tinyEcho(), ModuleOptions{}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("loading a second a: %v, want ErrDuplicate", err)
	}
	if got := th.Modules(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Modules() = %v, want [a b]", got)
	}
	if th.Module("a") != a {
		t.Error("Module(a) is not a")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("closing a: %v", err)
	}
	if err := a.Close(ctx); err != nil {
		t.Errorf("closing a twice: %v", err)
	}
	_, err := a.Call(ctx, []byte("x"))
	if fault.CodeOf(err) != fault.CodeUnavailable || !errors.Is(err, ErrClosed) {
		t.Errorf("Call on a closed module: %v, want Unavailable and ErrClosed", err)
	}
	if got := th.Modules(); len(got) != 1 || got[0] != "b" {
		t.Errorf("Modules() = %v after closing a, want [b]", got)
	}
	if err := th.Close(ctx); err != nil {
		t.Fatalf("closing the host: %v", err)
	}
	if _, err := b.Call(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after the host closed: %v, want ErrClosed", err)
	}
	if _, err := th.Load(ctx, "c", tinyEcho(), ModuleOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after the host closed: %v, want ErrClosed", err)
	}
}

func TestCloseDuringCall(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{CallTimeout: 10 * time.Second}))
	done := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), []byte("l"))
		done <- err
	}()
	for testutil.ToFloat64(th.metrics.idle.WithLabelValues("multi")) != 0 {
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if fault.CodeOf(err) != fault.CodeUnavailable || !errors.Is(err, ErrClosed) {
			t.Errorf("Call interrupted by Close: %v, want Unavailable and ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the running call")
	}
}

func TestMetrics(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{MinInstances: 2, MaxInstances: 3}))
	ctx := context.Background()
	for range 3 {
		if _, err := m.Call(ctx, []byte("ehi")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Call(ctx, []byte("p")); err == nil {
		t.Fatal("panic call succeeded")
	}
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"calls", th.metrics.calls.WithLabelValues("multi"), 4},
		{"trap errors", th.metrics.errors.WithLabelValues("multi", kindTrap), 1},
		{"timeout errors", th.metrics.errors.WithLabelValues("multi", kindTimeout), 0},
		{"instances", th.metrics.instances.WithLabelValues("multi"), 1},
		{"idle", th.metrics.idle.WithLabelValues("multi"), 1},
		{"discarded for a trap", th.metrics.discarded.WithLabelValues("multi", kindTrap), 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(th.reg, "latch_wasm_call_duration_seconds"); err != nil || n != 1 {
		t.Errorf("duration series: %d, %v; want 1", n, err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(th.reg); err != nil || n != 0 {
		t.Errorf("%d series left after Close (%v), want 0", n, err)
	}
}

func TestHostFunctionLimits(t *testing.T) {
	th := newTestHost(t, Options{})
	m := th.load(t, "multi", guestWasm(t, "multi"), multiOptions(ModuleOptions{}))
	long := strings.Repeat("x", 10000)
	if _, err := m.Call(context.Background(), []byte("L"+long)); err != nil {
		t.Fatal(err)
	}
	rec, ok := th.log.find("truncated=true")
	if !ok {
		t.Fatal("no truncated log record")
	}
	if len(rec.Message) != MaxLogBytes {
		t.Errorf("logged %d bytes, want %d", len(rec.Message), MaxLogBytes)
	}
}

func TestGuestOutput(t *testing.T) {
	rec := &recorder{}
	o := newGuestOutput(slog.New(rec))
	fmt.Fprintf(o.stdout(), "one\ntw")
	fmt.Fprintf(o.stderr(), "err\n")
	fmt.Fprintf(o.stdout(), "o\n%s\n", strings.Repeat("y", MaxLogBytes+10))
	fmt.Fprintf(o.stdout(), "unfinished")
	o.flush()
	want := []string{
		"stream=stdout text=one",
		"stream=stderr text=err",
		"stream=stdout text=two",
		"stream=stdout text=" + strings.Repeat("y", MaxLogBytes) + " truncated=true",
		"stream=stdout text=unfinished",
	}
	if len(rec.records) != len(want) {
		t.Fatalf("%d records, want %d", len(rec.records), len(want))
	}
	for i, w := range want {
		var got []string
		rec.records[i].Attrs(func(a slog.Attr) bool { got = append(got, a.String()); return true })
		if g := strings.Join(got, " "); g != w {
			t.Errorf("record %d = %.60q, want %.60q", i, g, w)
		}
	}

	t.Run("budget", func(t *testing.T) {
		rec := &recorder{}
		o := newGuestOutput(slog.New(rec))
		line := strings.Repeat("z", 1023) + "\n"
		for range 2 * outputBudget / len(line) {
			fmt.Fprint(o.stderr(), line)
		}
		if got, want := len(rec.records), outputBudget/len(line)+1; got != want {
			t.Errorf("%d records, want %d (the budget's worth and one notice)", got, want)
		}
		if _, ok := rec.find("over budget"); !ok {
			t.Error("no notice that output was dropped")
		}
	})
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		in   int32
		want slog.Level
	}{
		{-100, slog.LevelDebug}, {-4, slog.LevelDebug}, {-1, slog.LevelDebug}, {0, slog.LevelInfo},
		{3, slog.LevelInfo}, {4, slog.LevelWarn}, {7, slog.LevelWarn}, {8, slog.LevelError}, {1000, slog.LevelError},
	}
	for _, tt := range tests {
		if got := logLevel(tt.in); got != tt.want {
			t.Errorf("logLevel(%d) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPack(t *testing.T) {
	tests := []struct {
		ptr, n uint32
		packed uint64
	}{
		{0x0001_0000, 200, 0x0001_0000_0000_00c8},
		{0x0011_a0f0, 0x0001_2345, 0x0011_a0f0_0001_2345},
		{0, 0, 0},
		{0xffff_ffff, 0xffff_ffff, 0xffff_ffff_ffff_ffff},
	}
	for _, tt := range tests {
		if got := pack(tt.ptr, tt.n); got != tt.packed {
			t.Errorf("pack(%#x, %d) = %#x, want %#x", tt.ptr, tt.n, got, tt.packed)
		}
		if p, n := unpack(tt.packed); p != tt.ptr || n != tt.n {
			t.Errorf("unpack(%#x) = %#x, %d; want %#x, %d", tt.packed, p, n, tt.ptr, tt.n)
		}
	}
}

// TestWASIClockNeedsTheClockCapability reads the time through WASI (Go's
// time.Now), which is real only with the clock capability.
func TestWASIClockNeedsTheClockCapability(t *testing.T) {
	th := newTestHost(t, Options{})
	for _, tt := range []struct {
		name   string
		grants []string
		real   bool
	}{
		{"granted", []string{"log", "random", "kv", "clock"}, true},
		{"not granted", []string{"log", "random", "kv"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := allGrants(ModuleOptions{})
			opts.Grants = tt.grants
			m := th.load(t, "raw-"+strings.ReplaceAll(tt.name, " ", "-"), guestWasm(t, "raw"), opts)
			out, err := m.Call(context.Background(), []byte("t"))
			if err != nil || len(out) != 8 {
				t.Fatalf("Call = %x, %v", out, err)
			}
			got := time.Unix(0, int64(binary.BigEndian.Uint64(out))) //nolint:gosec // test data
			near := time.Since(got).Abs() < time.Minute
			if near != tt.real {
				t.Errorf("the guest's clock reads %v; real time: %v, want %v", got, near, tt.real)
			}
		})
	}
}
