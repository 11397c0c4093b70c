package plugin_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/internal/wasmtest"
	"github.com/latchid/latch/kernel/wasmhost"
)

// The Go test guests in testdata/guests, built once per test binary.
var guests = wasmtest.Guests{Names: []string{"pin", "greedy"}}

// guestWasm returns the named test guest, building all of them on first use.
func guestWasm(tb testing.TB, name string) []byte {
	tb.Helper()
	return guests.Get(tb, name)
}

// The compilation cache shared by the tests' hosts, so that each guest is
// compiled once per test binary rather than once per host.
var sharedCache struct {
	once sync.Once
	dir  string
	err  error
}

// newHost returns a WASM host on the shared compilation cache, closed when
// the test ends.
func newHost(tb testing.TB) *wasmhost.Host {
	tb.Helper()
	sharedCache.once.Do(func() {
		sharedCache.dir, sharedCache.err = os.MkdirTemp("", "plugin-cache-")
	})
	if sharedCache.err != nil {
		tb.Fatalf("creating the shared cache folder: %v", sharedCache.err)
	}
	h, err := wasmhost.New(context.Background(), wasmhost.Options{CacheDir: sharedCache.dir})
	if err != nil {
		tb.Fatalf("creating the wasm host: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			tb.Errorf("closing the wasm host: %v", err)
		}
	})
	return h
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCache.dir != "" {
		_ = os.RemoveAll(sharedCache.dir)
	}
	os.Exit(code)
}
