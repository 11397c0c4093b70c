package wasmhost

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/wasmhost/internal/meter"
)

// echo200 is a 200-byte echo call for the multi guest.
var echo200 = append([]byte{'e'}, bytes.Repeat([]byte{'x'}, 199)...)

// benchModule loads wasm and warms it up with calls of payload (which may
// be nil) from as many goroutines as it has instances, so that a short run
// measures the steady state and not the first growth of each instance's
// memory.
func benchModule(b *testing.B, wasm []byte, opts ModuleOptions, payload []byte) *Module {
	b.Helper()
	th := newTestHost(b, Options{})
	m := th.load(b, "bench", wasm, opts)
	var wg sync.WaitGroup
	for range m.opts.MaxInstances {
		wg.Go(func() {
			for range 1000 {
				if _, err := m.Call(context.Background(), payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return m
}

// multiOptions grants the multi guest what it imports (log, clock, random
// and, for host_call, kv), with a HostCaller that answers "answer to
// <request>", on top of o.
func multiOptions(o ModuleOptions) ModuleOptions {
	o.Grants = []string{"log", "clock", "random", "kv"}
	o.HostCaller = HostCallerFunc(func(ctx context.Context, module string, req []byte) ([]byte, error) {
		return append([]byte("answer to "), req...), nil
	})
	return o
}

// BenchmarkCallEcho200B measures one call on a warm pooled instance of a Go
// guest, with the call deadline on: taking the instance, the copy in,
// latch_handle, the copy out, the metrics.
func BenchmarkCallEcho200B(b *testing.B) {
	m := benchModule(b, guestWasm(b, "multi"), multiOptions(ModuleOptions{MaxInstances: 1}), echo200)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(echo200)))
	for b.Loop() {
		if _, err := m.Call(ctx, echo200); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallEcho200BWazeroCheck is BenchmarkCallEcho200B with the
// module left uninstrumented, under wazero's close-on-context-done: the
// deadline mechanism the host used before its own stop flag.
func BenchmarkCallEcho200BWazeroCheck(b *testing.B) {
	instrumentModule = func([]byte) ([]byte, error) { return nil, meter.ErrUnsupported }
	defer func() { instrumentModule = meter.Instrument }()
	BenchmarkCallEcho200B(b)
}

// BenchmarkCallEcho200BParallel is BenchmarkCallEcho200B from GOMAXPROCS
// goroutines, with as many warm instances.
func BenchmarkCallEcho200BParallel(b *testing.B) {
	n := runtime.GOMAXPROCS(0)
	m := benchModule(b, guestWasm(b, "multi"), multiOptions(ModuleOptions{MinInstances: n, MaxInstances: n}), echo200)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(echo200)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Call(ctx, echo200); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCallEcho200BTiny is BenchmarkCallEcho200B with the hand-made
// echo guest: the host's share of the cost, without a Go runtime inside.
func BenchmarkCallEcho200BTiny(b *testing.B) {
	m := benchModule(b, tinyEcho(), ModuleOptions{MaxInstances: 1}, echo200)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(echo200)))
	for b.Loop() {
		if _, err := m.Call(ctx, echo200); err != nil {
			b.Error(err)
			return
		}
	}
}

// BenchmarkCallHostCall measures a call whose guest makes one host_call:
// the re-entrant latch_buffer for the answer included.
func BenchmarkCallHostCall(b *testing.B) {
	payload := []byte("cquestion")
	m := benchModule(b, guestWasm(b, "multi"), multiOptions(ModuleOptions{MaxInstances: 1}), payload)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Call(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInstantiateFromPool measures what the pool pays to create an
// instance of an already compiled Go guest (to replace a discarded one, or
// to grow towards MaxInstances): instantiation and the guest's
// _initialize, which starts the Go runtime.
func BenchmarkInstantiateFromPool(b *testing.B) {
	th := newTestHost(b, Options{})
	m := th.load(b, "bench", guestWasm(b, "multi"), multiOptions(ModuleOptions{MinInstances: 1, MaxInstances: 2}))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		<-m.slots
		in, err := m.newInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		m.discard(in, "")
	}
}

// synthModule is a Latch guest with n extra functions of some arithmetic
// each (about 100 bytes of code apiece), big enough for compilation to
// matter and small enough to compile thousands of times in a benchmark.
func synthModule(n int) []byte {
	var body []byte
	for i := range 24 {
		body = cat(body, []byte{opLocalGet, 0}, i32Const(int32(i*7919)), []byte{0x6a /* i32.add */, 0x6c /* i32.mul */})
	}
	body = cat([]byte{opLocalGet, 0}, body)
	funcs := make([]wfunc, 0, n+4)
	for range n {
		funcs = append(funcs, wfunc{params: []byte{tI32}, results: []byte{tI32}, body: body})
	}
	return assemble(1, append(funcs, tinyExports(cat(i64Const(tinyBase<<32), []byte{opLocalGet, 0, opI64ExtendI32, opI64Or}))...)...)
}

// benchLoad loads wasm into a new host on cacheDir (in memory when empty)
// and closes it: a server start, as far as one module goes.
func benchLoad(b *testing.B, cacheDir string, wasm []byte) {
	ctx := context.Background()
	h, err := New(ctx, Options{CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := h.Load(ctx, "synth", wasm, ModuleOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCompileCold loads a 300-function module into a new host with an
// empty cache each time: compilation from scratch.
func BenchmarkCompileCold(b *testing.B) {
	wasm := synthModule(300)
	b.ReportMetric(float64(len(wasm)), "wasm_bytes")
	for b.Loop() {
		benchLoad(b, "", wasm)
	}
}

// BenchmarkCompileCached is BenchmarkCompileCold with the on-disk cache
// filled by an earlier host, as after a restart.
func BenchmarkCompileCached(b *testing.B) {
	wasm := synthModule(300)
	dir := b.TempDir()
	benchLoad(b, dir, wasm)
	b.ReportMetric(float64(len(wasm)), "wasm_bytes")
	for b.Loop() {
		benchLoad(b, dir, wasm)
	}
}
