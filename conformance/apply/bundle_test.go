package apply_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/latchid/latch/conformance/internal/live"
)

// bundleManifest describes the kernel's test PIN authenticator guest as a
// bundle; %s is the version.
const bundleManifest = `name: pin
version: %s
abi_version: "1"
description: The PIN authenticator of the kernel's tests, applied from a file.
extensions:
  - {kind: authenticator, name: pin}
  - {kind: throttler, name: always}
  - {kind: claims, name: upper}
config_schema:
  type: object
  properties:
    pin: {type: string, pattern: "^[0-9]{4,8}$"}
  additionalProperties: false
modules:
  wasm: modules/pin.wasm
`

// TestApplyBundle installs a signed bundle from a Bundle document, leaves
// it alone when applied again, reconfigures it, upgrades it when the file
// names a newer archive, and disables it.
func TestApplyBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and a WASM guest")
	}
	dir := t.TempDir()
	_, self, _, _ := runtime.Caller(0)
	wasm := filepath.Join(dir, "pin.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "./kernel/plugin/testdata/guests/pin")
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the guest: %v\n%s", err, out)
	}
	c := &cli{t: t, bin: live.Binary(t), dir: dir}
	keyOut, stderr, code := c.run("bundle", "keygen", "-o", filepath.Join(dir, "signer"))
	if code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	pack := func(version string) string {
		src := filepath.Join(dir, "src-"+version)
		if err := os.MkdirAll(filepath.Join(src, "modules"), 0o750); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(wasm)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "modules", "pin.wasm"), data, 0o600); err != nil { //nolint:gosec // G703: the test's own temporary folder.
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "latch-bundle.yaml"), []byte(fmt.Sprintf(bundleManifest, version)), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "pin-"+version+".tar.gz")
		for _, args := range [][]string{
			{"bundle", "pack", "-m", filepath.Join(src, "latch-bundle.yaml"), "-o", out},
			{"bundle", "sign", "--key", filepath.Join(dir, "signer.key"), out},
		} {
			if o, e, code := c.run(args...); code != 0 {
				t.Fatalf("latch %s: %s%s", strings.Join(args, " "), o, e)
			}
		}
		return filepath.Base(out)
	}
	v1, v2 := pack("1.0.0"), pack("1.1.0")

	s := live.StartWith(t, live.Options{Env: []string{"LATCH_BUNDLES_TRUSTED_KEYS=" + strings.TrimSpace(keyOut), "LATCH_HTTP_BODY_LIMIT=64MiB"}})
	c.env = []string{"LATCH_URL=" + s.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret}
	doc := func(file, pin string, enabled bool) string {
		return fmt.Sprintf("apiVersion: latch/v1\nkind: Bundle\nmetadata: {name: pin}\nspec:\n  file: %s\n  config: {pin: '%s'}\n  enabled: %v\n", file, pin, enabled)
	}
	state := func() (version, st string, config map[string]any) {
		var list struct {
			Items []struct {
				Version, State string
				Config         map[string]any
			}
		}
		if code := s.Admin(http.MethodGet, "/bundles", nil, &list); code != http.StatusOK {
			t.Fatalf("listing bundles: %d", code)
		}
		for _, it := range list.Items {
			if it.State != "previous" {
				return it.Version, it.State, it.Config
			}
		}
		return "", "", nil
	}

	for _, step := range []struct {
		name, file, want    string
		version, state, pin string
	}{
		{"install", doc(v1, "1234", true), "bundle/pin: created", "1.0.0", "enabled", "1234"},
		{"again", doc(v1, "1234", true), "bundle/pin: unchanged", "1.0.0", "enabled", "1234"},
		{"configure", doc(v1, "5678", true), "bundle/pin: updated (config)", "1.0.0", "enabled", "5678"},
		{"upgrade", doc(v2, "5678", true), "bundle/pin: updated (version 1.0.0 to 1.1.0)", "1.1.0", "enabled", "5678"},
		{"disable", doc(v2, "5678", false), "bundle/pin: updated (disabled)", "1.1.0", "disabled", "5678"},
		{"still disabled", doc(v2, "5678", false), "bundle/pin: unchanged", "1.1.0", "disabled", "5678"},
	} {
		out := c.mustApply(step.file)
		if !strings.Contains(out, step.want) {
			t.Fatalf("%s: no %q in\n%s", step.name, step.want, out)
		}
		version, st, cfg := state()
		if version != step.version || st != step.state || cfg["pin"] != step.pin {
			t.Fatalf("%s: bundle is %s %s %v, want %s %s pin %s", step.name, version, st, cfg, step.version, step.state, step.pin)
		}
	}
	// An archive holding another bundle than the document names is refused.
	_, stderr, code = c.apply(strings.Replace(doc(v2, "5678", false), "name: pin", "name: other", 1))
	if code == 0 || !strings.Contains(stderr, `the archive holds bundle "pin", not "other"`) {
		t.Errorf("mismatched name: exit %d %s", code, stderr)
	}
}
