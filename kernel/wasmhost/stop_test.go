package wasmhost

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/wasmhost/internal/meter"
)

// spinBody is an endless loop: (loop (br 0)).
var spinBody = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}

// withStart inserts a start section calling function fn before the code
// section of an assembled module.
func withStart(wasm []byte, fn byte) []byte {
	out := append([]byte(nil), wasm[:8]...)
	for r := wasm[8:]; len(r) > 0; {
		id := r[0]
		size, n := 0, 1
		for shift := 0; ; shift += 7 {
			c := r[n]
			n++
			size |= int(c&0x7f) << shift
			if c&0x80 == 0 {
				break
			}
		}
		if id == 10 {
			out = append(out, 8, 1, fn)
		}
		out = append(out, r[:n+size]...)
		r = r[n+size:]
	}
	return out
}

// uninstrumented loads modules under wazero's own check for the rest of
// the test.
func uninstrumented(t *testing.T) {
	instrumentModule = func([]byte) ([]byte, error) { return nil, meter.ErrUnsupported }
	t.Cleanup(func() { instrumentModule = meter.Instrument })
}

// TestStopFlag: guests are stopped at their flag wherever they loop, and
// modules the rewriter leaves alone are stopped by wazero as before.
func TestStopFlag(t *testing.T) {
	short := ModuleOptions{MaxInstances: 1, CallTimeout: 200 * time.Millisecond, InitTimeout: 300 * time.Millisecond}
	spinHandle := tinyGuest(cat(spinBody, i64Const(0)))
	tests := []struct {
		name             string
		wasm             func(t *testing.T) []byte
		opts             func(ModuleOptions) ModuleOptions
		wantInstrumented bool
		loadErr          error // nil: loads, and a call times out
	}{
		{name: "Go guest", wasm: func(t *testing.T) []byte { return multi(t) }, opts: multiOptions, wantInstrumented: true},
		{name: "loop in latch_handle", wasm: func(*testing.T) []byte { return spinHandle }, wantInstrumented: true},
		{name: "loop in _initialize", wasm: func(*testing.T) []byte {
			return tinyGuest(i64Const(0), wfunc{name: exportInitialize, export: true, body: spinBody})
		}, loadErr: context.DeadlineExceeded},
		{name: "loop in latch_describe", wasm: func(*testing.T) []byte {
			return assemble(1, append(tinyExports(i64Const(0))[:3], wfunc{name: exportDescribe, export: true, results: []byte{tI64}, body: cat(spinBody, i64Const(0))})...)
		}, loadErr: context.DeadlineExceeded},
		{name: "start function: wazero's check", wasm: func(*testing.T) []byte {
			return withStart(assemble(1, append([]wfunc{{name: "nop"}}, tinyExports(cat(spinBody, i64Const(0)))...)...), 0)
		}},
		{name: "reserved export refused", wasm: func(*testing.T) []byte {
			return tinyGuest(i64Const(0), wfunc{name: meter.StopExport, export: true})
		}, loadErr: ErrInvalidModule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newTestHost(t, Options{})
			opts := short
			if tt.opts != nil {
				opts = tt.opts(opts)
			}
			start := time.Now()
			m, err := th.Load(context.Background(), "x", tt.wasm(t), opts)
			if tt.loadErr != nil {
				if !errors.Is(err, tt.loadErr) {
					t.Fatalf("Load = %v, want %v", err, tt.loadErr)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("Load failed after %s", d)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if m.instrumented != tt.wantInstrumented {
				t.Errorf("instrumented = %v, want %v", m.instrumented, tt.wantInstrumented)
			}
			if !tt.wantInstrumented {
				if _, ok := th.log.find("cheap deadline check"); !ok {
					t.Error("the fallback was not logged")
				}
			}
			payload := []byte("l") // the Go guest's endless loop
			_, err = m.Call(context.Background(), payload)
			if fault.CodeOf(err) != fault.CodeTimeout || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Call = %v, want a timeout", err)
			}
			if got := th.discarded("x", kindTimeout); got != 1 {
				t.Errorf("discarded for timeout: %v, want 1", got)
			}
		})
	}
}

// TestStopErrorsMatchWazero: a deadline and a cancellation read the same
// under the stop flag as under wazero's close-on-context-done.
func TestStopErrorsMatchWazero(t *testing.T) {
	run := func(t *testing.T, cancel bool) string {
		th := newTestHost(t, Options{})
		m := th.load(t, "multi", multi(t), multiOptions(ModuleOptions{MaxInstances: 1, CallTimeout: 200 * time.Millisecond}))
		ctx := context.Background()
		if cancel {
			c, stop := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, stop)
			ctx = c
		}
		_, err := m.Call(ctx, []byte("l"))
		if err == nil {
			t.Fatal("the endless loop returned")
		}
		// Drop wazero's stack trace, which only its own stop has.
		return regexp.MustCompile(`(?s)\nwasm stack trace:.*`).ReplaceAllString(err.Error(), "")
	}
	for _, cancel := range []bool{false, true} {
		flag := run(t, cancel)
		var wazero string
		t.Run("wazero", func(t *testing.T) {
			uninstrumented(t)
			wazero = run(t, cancel)
		})
		if flag != wazero {
			t.Errorf("cancel=%v:\nflag:   %s\nwazero: %s", cancel, flag, wazero)
		}
		if !strings.Contains(flag, "module closed with") {
			t.Errorf("cancel=%v: %s", cancel, flag)
		}
	}
}
