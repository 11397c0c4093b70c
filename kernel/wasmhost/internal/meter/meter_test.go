package meter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/latchid/latch/kernel/internal/wasmtest"
)

// A small assembler for hand-made modules (no text-format tool is at hand).

type fn struct {
	params, results []byte
	locals          []byte // one i32/i64/… local per byte
	body            []byte // without the final end
	export          string
}

type mod struct {
	imports    []byte // encoded import entries
	nImports   int
	importFns  int
	memory     bool
	globals    []byte // encoded global entries
	nGlobals   int
	extraTypes [][2][]byte // extra function types (params, results), after the functions' own
	funcs      []fn
	start      *uint32
	table      bool
	custom     []string // custom section names, emitted first
	noExports  bool
	elem       []byte // the element section's contents, if any
}

func vecName(b []byte, s string) []byte { return append(vecLen(b, len(s)), s...) }

func (m mod) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, name := range m.custom {
		out = appendSection(out, secCustom, append(vecName(nil, name), "payload"...))
	}
	var types []byte
	nTypes := 0
	addType := func(p, r []byte) {
		types = append(types, 0x60)
		types = append(vecLen(types, len(p)), p...)
		types = append(vecLen(types, len(r)), r...)
		nTypes++
	}
	for _, f := range m.funcs {
		addType(f.params, f.results)
	}
	for _, t := range m.extraTypes {
		addType(t[0], t[1])
	}
	out = appendSection(out, 1, append(vecLen(nil, nTypes), types...))
	if m.nImports > 0 {
		out = appendSection(out, secImport, append(vecLen(nil, m.nImports), m.imports...))
	}
	var fs []byte
	for i := range m.funcs {
		fs = vecLen(fs, i)
	}
	out = appendSection(out, 3, append(vecLen(nil, len(m.funcs)), fs...))
	if m.table {
		out = appendSection(out, 4, []byte{1, 0x70, 0x00, 0x04})
	}
	if m.memory {
		out = appendSection(out, secMemory, []byte{1, 0x00, 0x01})
	}
	if m.nGlobals > 0 {
		out = appendSection(out, secGlobal, append(vecLen(nil, m.nGlobals), m.globals...))
	}
	if !m.noExports {
		var ex []byte
		n := 0
		for i, f := range m.funcs {
			if f.export != "" {
				ex = vecName(ex, f.export)
				ex = append(ex, 0x00)
				ex = vecLen(ex, m.importFns+i)
				n++
			}
		}
		out = appendSection(out, secExport, append(vecLen(nil, n), ex...))
	}
	if m.start != nil {
		out = appendSection(out, secStart, appendU32(nil, *m.start))
	}
	if m.elem != nil {
		out = appendSection(out, 9, m.elem)
	}
	var code []byte
	for _, f := range m.funcs {
		body := vecLen(nil, len(f.locals))
		for _, l := range f.locals {
			body = append(body, 1, l)
		}
		body = append(body, f.body...)
		body = append(body, 0x0b)
		code = append(vecLen(code, len(body)), body...)
	}
	return appendSection(out, secCode, append(vecLen(nil, len(m.funcs)), code...))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func i32c(v int32) []byte { return appendS32([]byte{0x41}, v) }

const (
	tI32  = 0x7f
	tI64  = 0x7e
	tV128 = 0x7b
)

// sumBody is sum(0..n-1) of its i32 parameter with a loop, in local 1.
var sumBody = cat(
	[]byte{0x02, 0x40},                               // block
	[]byte{0x03, 0x40},                               // loop
	[]byte{0x20, 0x00, 0x45, 0x0d, 0x01},             // local.get 0; i32.eqz; br_if 1
	[]byte{0x20, 0x00, 0x41, 0x01, 0x6b, 0x21, 0x00}, // n--
	[]byte{0x20, 0x01, 0x20, 0x00, 0x6a, 0x21, 0x01}, // acc += n
	[]byte{0x0c, 0x00},                               // br 0
	[]byte{0x0b, 0x0b},                               // end loop, end block
	[]byte{0x20, 0x01},
)

// compile compiles wasm in a runtime without close-on-context-done.
func compile(t testing.TB, wasm []byte) (wazero.Runtime, wazero.CompiledModule, error) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig())
	t.Cleanup(func() { _ = rt.Close(ctx) })
	code, err := rt.CompileModule(ctx, wasm)
	return rt, code, err
}

// callI32 instantiates wasm and calls export with the arguments.
func callI32(t *testing.T, wasm []byte, export string, args ...uint64) []uint64 {
	t.Helper()
	ctx := context.Background()
	rt, code, err := compile(t, wasm)
	if err != nil {
		t.Fatalf("compiling: %v", err)
	}
	m, err := rt.InstantiateModule(ctx, code, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiating: %v", err)
	}
	res, err := m.ExportedFunction(export).Call(ctx, args...)
	if err != nil {
		t.Fatalf("calling %s: %v", export, err)
	}
	return res
}

// TestInstrumentKeepsResults runs modules with every kind of immediate
// before and after instrumentation: same results, and both compile.
func TestInstrumentKeepsResults(t *testing.T) {
	importGlobal := cat(vecName(nil, "env"), vecName(nil, "g"), []byte{0x03, tI32, 0x00})
	tests := []struct {
		name string
		mod  mod
		args []uint64
		want uint64
	}{
		{"loop sum", mod{memory: true, funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, locals: []byte{tI32}, body: sumBody, export: "f"}}}, []uint64{100}, 4950},
		{"defined globals", mod{memory: true, nGlobals: 2, globals: cat([]byte{tI32, 0x01}, i32c(7), []byte{0x0b, tI64, 0x00, 0x42, 0x05, 0x0b}),
			funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, locals: []byte{tI32}, body: cat(sumBody, []byte{0x23, 0x00, 0x6a}), export: "f"}}}, []uint64{10}, 52},
		{"loop with params and results", mod{memory: true, extraTypes: [][2][]byte{{{tI32}, {tI32}}},
			funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, body: cat(
				[]byte{0x20, 0x00},
				[]byte{0x03, 0x01},                               // loop (type 1: i32 -> i32)
				[]byte{0x41, 0x01, 0x6a, 0x22, 0x00},             // +1, local.tee 0
				[]byte{0x20, 0x00, 0x41, 0x0a, 0x48, 0x0d, 0x00}, // br_if 0 while < 10
				[]byte{0x0b},
			), export: "f"}}}, []uint64{3}, 10},
		{"memory, bulk memory, typed select, br_table", mod{memory: true,
			funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, body: cat(
				i32c(16), i32c(0x11223344), []byte{0x36, 0x02, 0x00}, // i32.store
				i32c(32), i32c(16), i32c(4), []byte{0xfc, 0x0a, 0x00, 0x00}, // memory.copy
				i32c(48), i32c(1), i32c(4), []byte{0xfc, 0x0b, 0x00}, // memory.fill
				[]byte{0x02, 0x40, 0x02, 0x40, 0x20, 0x00, 0x0e, 0x01, 0x00, 0x01, 0x0b, 0x0b}, // br_table
				i32c(32), []byte{0x28, 0x02, 0x00}, // i32.load
				i32c(48), []byte{0x2d, 0x00, 0x00}, // i32.load8_u
				[]byte{0x20, 0x00, 0x1c, 0x01, tI32},                   // select (result i32)
				[]byte{0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x1a}, // i64.const; drop
				[]byte{0x43, 0, 0, 0x80, 0x3f, 0xfc, 0x00, 0x6a},       // f32.const 1; i32.trunc_sat_f32_s; i32.add
				[]byte{0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x1a},             // f64.const 0; drop
				[]byte{0xc0},                         // i32.extend8_s
				[]byte{0x3f, 0x00, 0x6a},             // memory.size; add
				[]byte{0x41, 0x00, 0x40, 0x00, 0x1a}, // memory.grow 0; drop
			), export: "f"}}}, []uint64{1}, 0x44 + 1 + 1},
		{"calls, tables and references", mod{memory: true, table: true, elem: []byte{1, 0x03, 0x00, 1, 1}, extraTypes: [][2][]byte{{nil, {tI32}}},
			funcs: []fn{
				{results: []byte{tI32}, body: cat(
					[]byte{0x41, 0x00, 0xd2, 0x01, 0x26, 0x00}, // table.set 0 (ref.func 1)
					[]byte{0xd0, 0x70, 0xd1, 0x1a},             // ref.null func; ref.is_null; drop
					[]byte{0x41, 0x00, 0x11, 0x01, 0x00},       // call_indirect (type 1) table 0
					[]byte{0x10, 0x01, 0x6a},                   // call 1; add
					[]byte{0xfc, 0x10, 0x00, 0x6a},             // table.size; add
				), export: "f"},
				{results: []byte{tI32}, body: cat([]byte{0x03, 0x40, 0x0b}, i32c(20))},
			}}, nil, 44},
		{"SIMD", mod{memory: true,
			funcs: []fn{{results: []byte{tI32}, body: cat(
				i32c(0),
				[]byte{0xfd, 0x0c}, bytes.Repeat([]byte{3}, 16), // v128.const
				[]byte{0xfd, 0x0c}, bytes.Repeat([]byte{4}, 16),
				[]byte{0xfd, 0x0d}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, // i8x16.shuffle
				[]byte{0xfd, 0x0c}, bytes.Repeat([]byte{1}, 16),
				[]byte{0xfd, 0x6e},                                        // i8x16.add
				[]byte{0xfd, 0x0b, 0x04, 0x00},                            // v128.store
				i32c(0), []byte{0xfd, 0x00, 0x04, 0x00, 0xfd, 0x15, 0x03}, // v128.load; i8x16.extract_lane_s 3
				i32c(0), []byte{0xfd, 0x0c}, make([]byte, 16), []byte{0xfd, 0x54, 0x00, 0x00, 0x03, 0xfd, 0x15, 0x03, 0x6a}, // v128.load8_lane 3; extract; add
				i32c(0), []byte{0xfd, 0x5c, 0x02, 0x00, 0xfd, 0x1b, 0x00, 0x6a}, // v128.load32_zero; i32x4.extract_lane 0; add
				[]byte{0x02, tV128, 0xfd, 0x0c}, bytes.Repeat([]byte{1}, 16), []byte{0x0b, 0xfd, 0x1b, 0x00, 0x6a}, // block (result v128); extract; add
				[]byte{0x03, 0x40, 0x0b},
			), export: "f"}}}, nil, 8 + 0x05050505},
		{"imported global and function", mod{memory: true, nImports: 1, imports: importGlobal,
			funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, locals: []byte{tI32}, body: cat(sumBody, []byte{0x23, 0x00, 0x6a}), export: "f"}}}, []uint64{5}, 10 + 3},
		{"debug sections dropped, others kept", mod{memory: true, custom: []string{".debug_info", "latch.test"},
			funcs: []fn{{params: []byte{tI32}, results: []byte{tI32}, locals: []byte{tI32}, body: sumBody, export: "f"}}}, []uint64{4}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.mod.bytes()
			out, err := Instrument(orig)
			if err != nil {
				t.Fatalf("Instrument: %v", err)
			}
			run := func(w []byte) uint64 {
				if tt.mod.nImports > 0 {
					return runWithEnv(t, w, tt.args)
				}
				return callI32(t, w, "f", tt.args...)[0]
			}
			if got := run(orig); got != tt.want {
				t.Fatalf("original = %d, want %d", got, tt.want)
			}
			if got := run(out); got != tt.want {
				t.Fatalf("instrumented = %d, want %d", got, tt.want)
			}
			if bytes.Contains(out, []byte(".debug_info")) {
				t.Error("a DWARF section survived")
			}
			if again, err := Instrument(out); !errors.Is(err, ErrReserved) {
				t.Errorf("instrumenting twice: %v, %d bytes; want ErrReserved", err, len(again))
			}
		})
	}
}

// runWithEnv runs f of a module importing env.g (an i32 global of 3).
func runWithEnv(t *testing.T, wasm []byte, args []uint64) uint64 {
	t.Helper()
	res, err := instantiateWithEnv(t, wasm).ExportedFunction("f").Call(context.Background(), args...)
	if err != nil {
		t.Fatalf("calling f: %v", err)
	}
	return res[0]
}

// instantiateWithEnv instantiates wasm beside a module env exporting g, an
// i32 global of 3.
func instantiateWithEnv(t *testing.T, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	rt, code, err := compile(t, wasm)
	if err != nil {
		t.Fatalf("compiling: %v", err)
	}
	env := []byte("\x00asm\x01\x00\x00\x00")
	env = appendSection(env, secGlobal, cat([]byte{1, tI32, 0x00}, i32c(3), []byte{0x0b}))
	env = appendSection(env, secExport, cat([]byte{1}, vecName(nil, "g"), []byte{0x03, 0x00}))
	if _, err := rt.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatalf("instantiating env: %v", err)
	}
	m, err := rt.InstantiateModule(ctx, code, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiating: %v", err)
	}
	return m
}

// TestInstrumentLayout checks that the exported stop flag is the global
// the loops look at, wherever the globals and the export go.
func TestInstrumentLayout(t *testing.T) {
	spin := fn{body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}, export: "spin"}
	for _, tt := range []struct {
		name string
		mod  mod
	}{
		{"no globals, no exports", mod{memory: true, noExports: true, funcs: []fn{spin}}},
		{"two defined globals", mod{memory: true, nGlobals: 2, globals: cat([]byte{tI32, 0x00}, i32c(1), []byte{0x0b, tI32, 0x01}, i32c(2), []byte{0x0b}), funcs: []fn{spin}}},
		{"one imported global", mod{memory: true, nImports: 1, imports: cat(vecName(nil, "env"), vecName(nil, "g"), []byte{0x03, tI32, 0x00}), funcs: []fn{spin}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Instrument(tt.mod.bytes())
			if err != nil {
				t.Fatal(err)
			}
			m := instantiateWithEnv(t, out)
			g := m.ExportedGlobal(StopExport)
			if g == nil || g.Type() != api.ValueTypeI32 {
				t.Fatalf("stop flag %v", g)
			}
			if _, ok := g.(api.MutableGlobal); !ok {
				t.Fatal("the stop flag is not mutable")
			}
			if tt.mod.noExports {
				return // nothing to call: the export section was added for the flag alone
			}
			stopAfter(t, m, 20*time.Millisecond)
			if _, err := m.ExportedFunction("spin").Call(context.Background()); err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("spin = %v, want an unreachable trap", err)
			}
		})
	}
}

// TestInstrumentRefuses lists what the rewriter leaves to wazero's own
// check, and the reserved name.
func TestInstrumentRefuses(t *testing.T) {
	ok := fn{body: []byte{0x03, 0x40, 0x0b}, export: "f"}
	zero := uint32(0)
	for _, tt := range []struct {
		name string
		wasm []byte
		want error
	}{
		{"not wasm", []byte("hello, world"), ErrUnsupported},
		{"truncated", func() []byte { b := mod{memory: true, funcs: []fn{ok}}.bytes(); return b[:len(b)-3] }(), ErrUnsupported},
		{"start function", mod{memory: true, funcs: []fn{ok}, start: &zero}.bytes(), ErrUnsupported},
		{"no memory", mod{funcs: []fn{ok}}.bytes(), ErrUnsupported},
		{"exception handling", mod{memory: true, funcs: []fn{{body: []byte{0x06, 0x40, 0x0b}}}}.bytes(), ErrUnsupported},
		{"atomics", mod{memory: true, funcs: []fn{{body: []byte{0x41, 0x00, 0xfe, 0x10, 0x02, 0x00, 0x1a}}}}.bytes(), ErrUnsupported},
		{"tail call", mod{memory: true, funcs: []fn{{body: []byte{0x12, 0x00}}}}.bytes(), ErrUnsupported},
		{"relaxed SIMD", mod{memory: true, funcs: []fn{{body: []byte{0xfd, 0x80, 0x02}}}}.bytes(), ErrUnsupported},
		{"a count larger than its section", cat([]byte("\x00asm\x01\x00\x00\x00"), []byte{9, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}), ErrMalformed},
		{"reserved export", func() []byte {
			m := mod{memory: true, funcs: []fn{{body: nil, export: StopExport}}}
			return m.bytes()
		}(), ErrReserved},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Instrument(tt.wasm); !errors.Is(err, tt.want) {
				t.Fatalf("Instrument = %v, want %v", err, tt.want)
			}
		})
	}
}

// stopAfter sets m's stop flag after d.
func stopAfter(t testing.TB, m api.Module, d time.Duration) *time.Timer {
	t.Helper()
	g, ok := m.ExportedGlobal(StopExport).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable %s", StopExport)
	}
	return time.AfterFunc(d, func() { g.Set(1) })
}

// TestStopEndlessLoop stops a hand-made endless loop by its flag.
func TestStopEndlessLoop(t *testing.T) {
	out, err := Instrument(mod{memory: true, funcs: []fn{{body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}, export: "spin"}}}.bytes())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, code, err := compile(t, out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.InstantiateModule(ctx, code, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	stopAfter(t, m, 50*time.Millisecond)
	start := time.Now()
	_, err = m.ExportedFunction("spin").Call(ctx)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin = %v, want an unreachable trap", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopped after %s", d)
	}
}

var goGuest struct {
	once sync.Once
	wasm []byte
	err  error
}

// goGuestWasm builds testdata/goguest with the plugin authors' command.
func goGuestWasm(t *testing.T) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go guest")
	}
	goGuest.once.Do(func() {
		dir, err := os.MkdirTemp("", "meter-goguest-")
		if err != nil {
			goGuest.err = err
			return
		}
		defer func() { _ = os.RemoveAll(dir) }()
		goGuest.wasm, goGuest.err = wasmtest.Build("./testdata/goguest", filepath.Join(dir, "goguest.wasm"))
	})
	if goGuest.err != nil {
		t.Fatal(goGuest.err)
	}
	return goGuest.wasm
}

// instantiateGo instantiates a Go reactor: WASI, then _initialize.
func instantiateGo(t *testing.T, wasm []byte, closeOnDone bool) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone))
	t.Cleanup(func() { _ = rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	m, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatalf("instantiating: %v", err)
	}
	return m
}

// TestGoGuest runs a real Go wasip1 guest instrumented: the same results as
// the original, and an endless loop stopped by the flag while another
// goroutine keeps forcing garbage collections on a single P, which only
// completes because the guest returns to Go every Fuel loop headers.
func TestGoGuest(t *testing.T) {
	orig := goGuestWasm(t)
	out, err := Instrument(orig)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	ctx := context.Background()
	a, b := instantiateGo(t, orig, true), instantiateGo(t, out, false)
	for _, n := range []uint64{0, 1, 10, 500} {
		ra, err := a.ExportedFunction("work").Call(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.ExportedFunction("work").Call(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if ra[0] != rb[0] {
			t.Errorf("work(%d): original %#x, instrumented %#x", n, ra[0], rb[0])
		}
	}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	stopAfter(t, b, 200*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := b.ExportedFunction("spin").Call(ctx)
		done <- err
	}()
	deadline := time.After(20 * time.Second)
	for {
		runtime.GC()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("spin = %v, want an unreachable trap", err)
			}
			return
		case <-deadline:
			t.Fatal("the guest was not stopped")
		default:
		}
	}
}

// vecLen appends a test module's count or length, always small.
func vecLen(b []byte, n int) []byte {
	return appendU32(b, uint32(n)) //nolint:gosec // G115: the test modules' counts are tiny
}
