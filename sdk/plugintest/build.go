package plugintest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildWASM builds the Go main package in pkgDir (a plugin) into a WASM
// module at out, with the same command `latch plugin build` runs:
//
//	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -o out pkgDir
//
// and returns the module's bytes, for instance to run the built plugin
// under the real host with the conformance kit (conformance/abi). The go
// tool must be on PATH.
func BuildWASM(pkgDir, out string) ([]byte, error) {
	if !filepath.IsAbs(pkgDir) && !strings.HasPrefix(pkgDir, ".") {
		pkgDir = "./" + pkgDir
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkgDir) //nolint:gosec // G204: the package path is the caller's own
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building %s for wasip1: %w\n%s", pkgDir, err, strings.TrimSpace(stderr.String()))
	}
	w, err := os.ReadFile(out) //nolint:gosec // G304: the output path is the caller's own
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", out, err)
	}
	return w, nil
}
