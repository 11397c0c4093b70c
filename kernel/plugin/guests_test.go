package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/internal/wasmtest"
	"github.com/latchid/latch/kernel/wasmhost"
)

// The Go test guests in testdata/guests, built once per test binary (the
// pattern of kernel/wasmhost/guests_test.go).
var guestNames = []string{"pin", "greedy"}

var guests struct {
	once sync.Once
	dir  string
	wasm map[string][]byte
	err  error
}

// guestsMu guards guests.wasm while the guests build in parallel.
var guestsMu sync.Mutex

// guestWasm returns the named test guest, building all of them on first
// use: the first alone (it fills the build cache with the wasip1 standard
// library), then the others in parallel.
func guestWasm(tb testing.TB, name string) []byte {
	tb.Helper()
	guests.once.Do(buildGuests)
	if guests.err != nil {
		tb.Fatal(guests.err)
	}
	w, ok := guests.wasm[name]
	if !ok {
		tb.Fatalf("no test guest %q", name)
	}
	return w
}

func buildGuests() {
	dir, err := os.MkdirTemp("", "plugin-guests-")
	if err != nil {
		guests.err = fmt.Errorf("creating the guest build folder: %w", err)
		return
	}
	guests.dir = dir
	guests.wasm = map[string][]byte{}
	if guests.err = buildGuest(dir, guestNames[0]); guests.err != nil {
		return
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, name := range guestNames[1:] {
		wg.Go(func() {
			err := buildGuest(dir, name)
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		})
	}
	wg.Wait()
	guests.err = errors.Join(errs...)
}

// buildGuest builds testdata/guests/<name> into dir and records it.
func buildGuest(dir, name string) error {
	w, err := wasmtest.Build("./testdata/guests/"+name, filepath.Join(dir, name+".wasm"))
	if err != nil {
		return fmt.Errorf("building test guest %s: %w", name, err)
	}
	guestsMu.Lock()
	defer guestsMu.Unlock()
	guests.wasm[name] = w
	return nil
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
	for _, dir := range []string{guests.dir, sharedCache.dir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
