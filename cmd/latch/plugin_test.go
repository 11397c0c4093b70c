package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/sdk/plugintest"
)

// pluginGuests builds the test guests of kernel/plugin (pin, greedy) once
// per test run and returns the folder holding <name>.wasm.
var pluginGuests = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "latch-guests-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"pin", "greedy"} {
		if _, err := plugintest.BuildWASM("../../kernel/plugin/testdata/guests/"+name, filepath.Join(dir, name+".wasm")); err != nil {
			return "", err
		}
	}
	return dir, nil
})

func guest(t *testing.T, name string) string {
	t.Helper()
	dir, err := pluginGuests()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name+".wasm")
}

func TestPluginInspect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the latch binary and WASM guests; skipped in -short mode")
	}
	pin := guest(t, "pin")
	t.Run("text", func(t *testing.T) {
		out, stderr, code := latch(t, nil, "", "plugin", "inspect", pin)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"testpin 0.1.0", "abi version:  1", "(authn.pin)", "(throttle.always)", "(claims.upper)", "capabilities: none", "config schema: yes", "wasi_snapshot_preview1."} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		out, stderr, code := latch(t, nil, "", "plugin", "inspect", "--json", guest(t, "greedy"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct {
			Name         string `json:"name"`
			ABIVersion   string `json:"abi_version"`
			Entries      []struct{ Kind, Name, ID string }
			Capabilities []struct {
				Name  string
				Hosts []string
			}
			ConfigSchema json.RawMessage `json:"config_schema"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if got.Name != "greedy" || got.ABIVersion != "1" || len(got.Entries) != 1 || got.Entries[0].ID != "authn.greedy" || got.Entries[0].Kind != "authenticator" {
			t.Errorf("description = %+v", got)
		}
		if len(got.Capabilities) != 1 || got.Capabilities[0].Name != "http" || len(got.Capabilities[0].Hosts) != 1 || got.Capabilities[0].Hosts[0] != "api.example.com" {
			t.Errorf("capabilities = %+v", got.Capabilities)
		}
		if got.ConfigSchema != nil {
			t.Errorf("config_schema = %s, greedy has none", got.ConfigSchema)
		}
	})
}

func TestPluginTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the latch binary and WASM guests; skipped in -short mode")
	}
	pin := guest(t, "pin")
	t.Run("pin passes", func(t *testing.T) {
		out, stderr, code := latch(t, nil, "", "plugin", "test", pin, "--config", `authn.pin={"pin":"1234"}`)
		if code != 0 {
			t.Fatalf("exit %d:\n%s%s", code, out, stderr)
		}
		for _, want := range []string{
			`PASS authn.pin configure {"pin":"1234"}`,
			"PASS authn.pin authenticate",
			"PASS throttle.always allow",
			"PASS claims.upper map_claims",
			"WARN claims.upper health", // the guest says it is never healthy
			"PASS claims.upper close",
			"11 passed, 0 failed (1 warning)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("configuration refused", func(t *testing.T) {
		out, _, code := latch(t, nil, "", "plugin", "test", pin, "--config", `authn.pin={"pin":"0000"}`)
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		if !strings.Contains(out, "FAIL authn.pin configure") || !strings.Contains(out, "too weak") || !strings.Contains(out, "1 failed") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("bad --config", func(t *testing.T) {
		_, stderr, code := latch(t, nil, "", "plugin", "test", pin, "--config", `authn.nope={}`)
		if code != 1 || !strings.Contains(stderr, "authn.nope: the module declares no such extension") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("ungranted capability", func(t *testing.T) {
		greedy := guest(t, "greedy")
		_, stderr, code := latch(t, nil, "", "plugin", "test", greedy)
		if code != 1 || !strings.Contains(stderr, `requests capability "http" (hosts [api.example.com]) which was not granted`) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		out, stderr, code := latch(t, nil, "", "plugin", "test", greedy, "--grant", "http")
		if code != 1 || !strings.Contains(out, "FAIL authn.greedy configure") || !strings.Contains(out, "unsupported: greedy does nothing") {
			t.Errorf("granted http: exit %d (want 1: greedy refuses every call, configure included)\n%s%s", code, out, stderr)
		}
	})
}

func TestPluginRefusesNonModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the latch binary; skipped in -short mode")
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.wasm")
	// A valid WebAssembly module with no Latch exports: magic and version only.
	empty := filepath.Join(dir, "empty.wasm")
	for path, body := range map[string][]byte{garbage: []byte("not wasm at all"), empty: {0, 'a', 's', 'm', 1, 0, 0, 0}} {
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "garbage inspect", args: []string{"plugin", "inspect", garbage}, want: "refusing module " + garbage + ": "},
		{name: "garbage test", args: []string{"plugin", "test", garbage}, want: "not begin with the WebAssembly magic number"},
		{name: "not a latch module", args: []string{"plugin", "inspect", empty}, want: "refusing module " + empty + ": "},
		{name: "missing file", args: []string{"plugin", "inspect", filepath.Join(dir, "nope.wasm")}, want: "reading the module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := latch(t, nil, "", tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want a failure naming %q", code, out, stderr, tt.want)
			}
		})
	}
}
