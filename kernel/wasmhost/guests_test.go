package wasmhost

import (
	"os"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/internal/wasmtest"
)

// The Go test guests in testdata/guests, built once per test binary.
var guests = wasmtest.Guests{Names: []string{"multi", "raw", "nomarker"}}

// guestWasm returns the named test guest, building all of them on first use.
func guestWasm(tb testing.TB, name string) []byte {
	tb.Helper()
	return guests.Get(tb, name)
}

// The compilation cache folder shared by the tests' hosts, so that each
// guest is compiled once per test binary rather than once per host.
var sharedCache struct {
	once sync.Once
	dir  string
	err  error
}

func sharedCacheDir(tb testing.TB) string {
	tb.Helper()
	sharedCache.once.Do(func() {
		sharedCache.dir, sharedCache.err = os.MkdirTemp("", "wasmhost-cache-")
	})
	if sharedCache.err != nil {
		tb.Fatalf("creating the shared cache folder: %v", sharedCache.err)
	}
	return sharedCache.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCache.dir != "" {
		_ = os.RemoveAll(sharedCache.dir)
	}
	os.Exit(code)
}
