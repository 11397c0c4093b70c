package wasmhost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchid/latch/kernel/internal/wasmtest"
)

// The Go test guests in testdata/guests, built once per test binary.
var guestNames = []string{"multi", "raw", "nomarker"}

var guests struct {
	once sync.Once
	dir  string
	wasm map[string][]byte
	err  error
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

// guestWasm returns the named test guest, building all of them on first
// use. -buildmode=c-shared takes exactly one main package, so each guest is
// one `go build`: the first alone (it fills the build cache with the wasip1
// standard library, which parallel builds would each compile again), then
// the others in parallel.
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
	dir, err := os.MkdirTemp("", "wasmhost-guests-")
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

// guestsMu guards guests.wasm while the guests build in parallel.
var guestsMu sync.Mutex

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{guests.dir, sharedCache.dir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}
