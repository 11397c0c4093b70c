// Package wasmtest builds Go test guests into WASM modules for the kernel's
// own tests. Plugin authors have the same helper in sdk/plugintest
// (BuildWASM); the kernel keeps this copy because it does not import sdk/.
package wasmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
