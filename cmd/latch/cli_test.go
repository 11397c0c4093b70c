package main_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// latch runs the built binary with args and stdin; it returns stdout,
// stderr and the exit code.
func latch(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	bin, err := buildLatch()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestAdminCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	p := startLatch(t, t.TempDir())
	env := []string{"LATCH_URL=" + p.url, "LATCH_ADMIN_CLIENT_SECRET=" + clientSecret}

	out, stderr, code := latch(t, env, "a long passphrase\n", "admin", "users", "create", "--username", "alice", "--email", "alice@example.com", "--password-stdin")
	if code != 0 {
		t.Fatalf("users create: %d %s", code, stderr)
	}
	var u struct{ ID, Username, Email string }
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.Username != "alice" || u.ID == "" {
		t.Fatalf("users create printed %q", out)
	}

	out, _, code = latch(t, env, "", "admin", "users", "list", "--username", "alice")
	if code != 0 || !strings.Contains(out, u.ID) {
		t.Fatalf("users list --username: %d %s", code, out)
	}

	// A bad request exits non-zero with the API's error on stderr.
	_, stderr, code = latch(t, env, "", "admin", "users", "create", "--username", "alice", "--password", "another long one")
	if code == 0 || !strings.Contains(stderr, "conflict") || !strings.Contains(stderr, "alice") {
		t.Fatalf("duplicate create: %d %q", code, stderr)
	}

	out, stderr, code = latch(t, env, "", "admin", "users", "update", u.ID, "--display-name", "Alice", "--enabled=false")
	if code != 0 || !strings.Contains(out, `"enabled": false`) || !strings.Contains(out, `"display_name": "Alice"`) {
		t.Fatalf("users update: %d %s %s", code, out, stderr)
	}

	out, stderr, code = latch(t, env, "", "admin", "tenants", "create", "acme", "--display-name", "ACME")
	if code != 0 || !strings.Contains(out, `"name": "acme"`) {
		t.Fatalf("tenants create: %d %s %s", code, out, stderr)
	}
	out, stderr, code = latch(t, append(env, "LATCH_TENANT=acme"), "", "admin", "clients", "create", "--name", "shop", "--redirect-uri", "https://shop.example/cb", "--grant-type", "authorization_code")
	if code != 0 || !strings.Contains(out, `"client_secret"`) || !strings.Contains(out, "https://shop.example/cb") {
		t.Fatalf("clients create in tenant: %d %s %s", code, out, stderr)
	}
	out, _, code = latch(t, env, "", "admin", "clients", "list")
	if code != 0 || strings.Contains(out, "shop.example") {
		t.Fatalf("acme's client visible in the default tenant: %s", out)
	}

	out, stderr, code = latch(t, env, "", "admin", "extensions")
	var ext struct {
		Modules   []struct{ ID, Kind string }
		Instances []struct {
			Name    string
			Healthy bool
		}
		Enabled map[string][]string
	}
	if code != 0 || json.Unmarshal([]byte(out), &ext) != nil {
		t.Fatalf("extensions: %d %s %s", code, out, stderr)
	}
	// One default instance per builtin module; modules that need
	// configuration (provision.scim, throttle.redis, userstore.ldap) are
	// registered only.
	names := map[string]bool{}
	for _, in := range ext.Instances {
		names[in.Name] = true
	}
	for _, want := range []string{"authn.password", "claims.mapping", "throttle.local", "userstore.local"} {
		if !names[want] {
			t.Errorf("no default instance %s: %s", want, out)
		}
	}
	if names["throttle.redis"] || names["provision.scim"] || names["userstore.ldap"] || len(ext.Modules) < len(ext.Instances)+3 {
		t.Fatalf("modules that need configuration got default instances: %s", out)
	}
	for _, in := range ext.Instances {
		if !in.Healthy {
			t.Errorf("instance %s unhealthy", in.Name)
		}
	}
	if got := ext.Enabled["userstore"]; len(got) != 1 || got[0] != "userstore.local" {
		t.Errorf("enabled user stores: %v", got)
	}

	// Audit events reach the store asynchronously: allow them a moment.
	for i := 0; ; i++ {
		out, _, code = latch(t, env, "", "admin", "audit", "--action", "tenant.create")
		if code == 0 && strings.Contains(out, `"action": "tenant.create"`) && strings.Contains(out, `"actor": "client:latch-admin"`) {
			break
		}
		if i == 50 {
			t.Fatalf("audit query: %d %s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	_, stderr, code = latch(t, []string{"LATCH_URL=" + p.url, "LATCH_ADMIN_CLIENT_SECRET=wrong"}, "", "admin", "users", "list")
	if code == 0 || !strings.Contains(stderr, "unauthenticated") {
		t.Fatalf("wrong secret: %d %q", code, stderr)
	}
	_, stderr, code = latch(t, []string{"LATCH_URL=" + p.url, "LATCH_ADMIN_CLIENT_SECRET="}, "", "admin", "users", "list")
	if code == 0 || !strings.Contains(stderr, "LATCH_ADMIN_CLIENT_SECRET") {
		t.Fatalf("no secret: %d %q", code, stderr)
	}
}

func TestOperatorCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	data := t.TempDir()
	secretEnv := []string{"LATCH_BOOTSTRAP_ADMIN_PASSWORD=never-print-this-password", "LATCH_STORE_DSN="}

	out, stderr, code := latch(t, secretEnv, "", "config", "print", "--data", data, "--listen", "127.0.0.1:9999")
	if code != 0 || !strings.Contains(out, "127.0.0.1:9999") || strings.Contains(out, "never-print-this-password") {
		t.Fatalf("config print: %d\n%s\n%s", code, out, stderr)
	}
	_, stderr, code = latch(t, nil, "", "config", "print", "--listen", "0.0.0.0:80")
	if code == 0 || !strings.Contains(stderr, "tls") {
		t.Fatalf("plain HTTP on all interfaces accepted: %d %q", code, stderr)
	}

	out, stderr, code = latch(t, nil, "", "migrate", "--data", data)
	if code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate: %d %s %s", code, out, stderr)
	}
	// keys rotate needs the default tenant: create it with a first start.
	p := startLatch(t, data)
	p.kill9()
	out, stderr, code = latch(t, nil, "", "keys", "rotate", "--data", data, "--algorithm", "EdDSA")
	if code != 0 || !strings.Contains(out, "now signs with key") {
		t.Fatalf("keys rotate: %d %s %s", code, out, stderr)
	}
	_, stderr, code = latch(t, nil, "", "keys", "rotate", "--data", data, "--tenant", "nope")
	if code == 0 || !strings.Contains(stderr, "nope") {
		t.Fatalf("rotate for a missing tenant: %d %q", code, stderr)
	}
	// A bad extension configuration stops the start and names the field.
	bad := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(bad, []byte("extensions:\n  instances:\n    - name: limiter\n      module: throttle.local\n      config: {no_such_option: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = latch(t, nil, "", "serve", "--config", bad, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "no_such_option") || !strings.Contains(stderr, "limiter") {
		t.Fatalf("bad extension config: %d %q", code, stderr)
	}

	out, _, code = latch(t, nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "latch ") {
		t.Fatalf("version: %d %q", code, out)
	}
}
