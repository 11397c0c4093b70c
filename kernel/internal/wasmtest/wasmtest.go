// Package wasmtest builds Go test guests into WASM modules for the kernel's
// own tests. Plugin authors have the same helper in sdk/plugintest
// (BuildWASM); the kernel keeps this copy because it does not import sdk/.
package wasmtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Build builds the Go main package in pkgDir into out, with the command a
// plugin author uses:
//
//	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -o out pkgDir
//
// and returns the module's bytes.
func Build(pkgDir, out string) ([]byte, error) {
	if !filepath.IsAbs(pkgDir) && !strings.HasPrefix(pkgDir, ".") {
		pkgDir = "./" + pkgDir
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkgDir) //nolint:gosec // G204: test guests named by the kernel's own tests
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building %s for wasip1: %w\n%s", pkgDir, err, strings.TrimSpace(stderr.String()))
	}
	w, err := os.ReadFile(out) //nolint:gosec // G304: the output path the caller chose
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", out, err)
	}
	return w, nil
}

// Guests builds testdata/guests/<name> for each name, once per test binary,
// on first use. The first guest builds alone (it fills the build cache with
// the wasip1 standard library, which parallel builds would each compile
// again), then the others in parallel.
type Guests struct {
	// Names lists the guests under testdata/guests; the first builds first.
	Names []string

	once sync.Once
	wasm map[string][]byte
	err  error
}

// Get returns the named guest's module, building all of them on first use.
func (g *Guests) Get(tb testing.TB, name string) []byte {
	tb.Helper()
	g.once.Do(g.build)
	if g.err != nil {
		tb.Fatal(g.err)
	}
	w, ok := g.wasm[name]
	if !ok {
		tb.Fatalf("no test guest %q", name)
	}
	return w
}

func (g *Guests) build() {
	dir, err := os.MkdirTemp("", "latch-guests-")
	if err != nil {
		g.err = fmt.Errorf("creating the guest build folder: %w", err)
		return
	}
	// The modules are read into memory; the folder is not needed after.
	defer func() { _ = os.RemoveAll(dir) }()
	g.wasm = make(map[string][]byte, len(g.Names))
	var mu sync.Mutex
	one := func(name string) error {
		w, err := Build("./testdata/guests/"+name, filepath.Join(dir, name+".wasm"))
		if err != nil {
			return fmt.Errorf("building test guest %s: %w", name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		g.wasm[name] = w
		return nil
	}
	if len(g.Names) == 0 {
		return
	}
	if g.err = one(g.Names[0]); g.err != nil {
		return
	}
	errs := make([]error, len(g.Names))
	var wg sync.WaitGroup
	for i, name := range g.Names[1:] {
		wg.Go(func() { errs[i] = one(name) })
	}
	wg.Wait()
	g.err = errors.Join(errs...)
}
