package main_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginNewBuildTest scaffolds an authenticator inside the repository,
// runs its generated tests, builds it with `latch plugin build` and checks
// it under the real WASM host with `latch plugin test` and `inspect`; then
// does the same for plugins/ipallow. These are the steps of
// docs/plugin-guide.md.
func TestPluginNewBuildTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the latch binary and WASM guests; skipped in -short mode")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	dir := filepath.Join(root, "plugins", "zz-test-"+hex.EncodeToString(rnd[:]))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	work := t.TempDir()

	t.Run("new authenticator", func(t *testing.T) {
		out, stderr, code := latch(t, nil, "", "plugin", "new", "authenticator", "demo", "--dir", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(out, "authn.demo") {
			t.Errorf("output lacks authn.demo:\n%s", out)
		}
		for _, f := range []string{"main.go", "main_test.go", "README.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			t.Error("go.mod written inside the Latch module")
		}
		goTest := exec.Command("go", "test", "-count=1", ".")
		goTest.Dir = dir
		if b, err := goTest.CombinedOutput(); err != nil {
			t.Fatalf("go test of the generated plugin: %v\n%s", err, b)
		}
	})
	t.Run("new refuses", func(t *testing.T) {
		for _, args := range [][]string{
			{"authenticator", "demo", "--dir", dir}, // not empty
			{"authenticator", "Demo", "--dir", filepath.Join(work, "a")},
			{"authenticator", "1demo", "--dir", filepath.Join(work, "b")},
			{"authenticator", "de.mo", "--dir", filepath.Join(work, "c")},
			{"userstore", "demo", "--dir", filepath.Join(work, "d")},
		} {
			if _, stderr, code := latch(t, nil, "", append([]string{"plugin", "new"}, args...)...); code == 0 || !strings.Contains(stderr, "plugin new:") {
				t.Errorf("plugin new %v: exit %d, stderr %q; want a refusal", args, code, stderr)
			}
		}
	})
	t.Run("new outside the repository writes go.mod", func(t *testing.T) {
		out := filepath.Join(work, "outside")
		if _, stderr, code := latch(t, nil, "", "plugin", "new", "throttler", "rate", "--dir", out, "--module", "example.com/acme/rate"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "module example.com/acme/rate") || !strings.Contains(string(b), "require github.com/latchid/latch") {
			t.Errorf("go.mod:\n%s", b)
		}
	})
	t.Run("build, test, inspect", func(t *testing.T) {
		wasm := filepath.Join(work, "demo.wasm")
		if out, stderr, code := latch(t, nil, "", "plugin", "build", dir, "-o", wasm); code != 0 {
			t.Fatalf("build: exit %d:\n%s%s", code, out, stderr)
		}
		out, stderr, code := latch(t, nil, "", "plugin", "test", wasm)
		if code != 0 || !strings.Contains(out, " 0 failed") {
			t.Fatalf("test: exit %d:\n%s%s", code, out, stderr)
		}
		out, stderr, code = latch(t, nil, "", "plugin", "inspect", wasm)
		if code != 0 || !strings.Contains(out, "(authn.demo)") {
			t.Fatalf("inspect: exit %d:\n%s%s", code, out, stderr)
		}
	})
	t.Run("build without go on PATH", func(t *testing.T) {
		_, stderr, code := latch(t, []string{"PATH=" + work}, "", "plugin", "build", dir, "-o", filepath.Join(work, "x.wasm"))
		if code == 0 || !strings.Contains(stderr, "go is not on PATH") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("ipallow", func(t *testing.T) {
		wasm := filepath.Join(work, "plugins-ipallow.wasm")
		if out, stderr, code := latch(t, nil, "", "plugin", "build", filepath.Join(root, "plugins", "ipallow"), "-o", wasm); code != 0 {
			t.Fatalf("build: exit %d:\n%s%s", code, out, stderr)
		}
		out, stderr, code := latch(t, nil, "", "plugin", "test", wasm, "--config", `authn.ipallow={"allow":["127.0.0.0/8"]}`)
		if code != 0 || !strings.Contains(out, "PASS authn.ipallow authenticate") || !strings.Contains(out, " 0 failed") {
			t.Fatalf("test: exit %d:\n%s%s", code, out, stderr)
		}
		out, _, code = latch(t, nil, "", "plugin", "test", wasm, "--config", `authn.ipallow={"allow":["10.0.0.0/33"]}`)
		if code != 1 || !strings.Contains(out, "FAIL authn.ipallow configure") {
			t.Errorf("a bad CIDR: exit %d:\n%s", code, out)
		}
	})
}
