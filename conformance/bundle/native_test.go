package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchid/latch/conformance/internal/live"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// vaultManifest is the native test plugin's manifest; plugin pack fills
// the modules in.
const vaultManifest = `name: vault
version: %s
abi_version: "1"
description: The native PIN authenticator of the bundle suite.
extensions:
  - {kind: authenticator, name: pin}
capabilities:
  - {name: secrets}
config_schema:
  type: object
  properties:
    pin: {type: string, pattern: "^[0-9]{4,8}$", writeOnly: true}
    via_host: {type: boolean}
  required: [pin]
  additionalProperties: false
`

// packNative packs the native binary with `latch plugin pack` for goos/
// goarch and signs it.
func packNative(t *testing.T, c cli, dir, bin, version, goos, goarch, key string) string {
	t.Helper()
	src := filepath.Join(dir, "vault-"+version+"-"+goos+"-"+goarch)
	if err := os.MkdirAll(src, 0o750); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(src, "latch-bundle.yaml")
	if err := os.WriteFile(m, []byte(fmt.Sprintf(vaultManifest, version)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(src, "vault.bundle.tar.gz")
	c.must("plugin", "pack", "-m", m, "--native", bin, "--os", goos, "--arch", goarch, "--key", key, "-o", out)
	return out
}

// loginAt runs an authorization request at base (a tenant's URL) for a
// client whose only step is the vault's PIN. offered reports whether the
// PIN form was shown; err is nil when the login ended at the client with a
// code.
func loginAt(base, client, pin string) (offered bool, err error) {
	b := &browser{}
	jar, _ := cookiejar.New(nil)
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "scope": {"openid"},
		"state": {"state-vault-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	req, _ := http.NewRequest(http.MethodGet, base+"/oauth2/authorize?"+q.Encode(), nil)
	body, at, err := b.follow(req, redirect)
	if err != nil {
		return strings.Contains(body, `name="pin"`), err
	}
	if !strings.Contains(body, `name="pin"`) {
		return false, fmt.Errorf("want the PIN form, got %.300s", body)
	}
	action, fields, err := form(body)
	if err != nil {
		return true, err
	}
	fields.Set("pin", pin)
	u, _ := url.Parse(at)
	target, err := u.Parse(action)
	if err != nil {
		return true, err
	}
	req, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, loc, err := b.follow(req, redirect)
	if err != nil {
		return true, err
	}
	if l, err := url.Parse(loc); err != nil || !strings.HasPrefix(loc, redirect) || l.Query().Get("code") == "" {
		return true, fmt.Errorf("the login did not end at the client with a code: %q", loc)
	}
	return true, nil
}

// pluginPids lists the live processes whose binary lies under dir (the
// node's extracted native bundles).
func pluginPids(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, dir+string(filepath.Separator)) && !strings.HasSuffix(exe, "(deleted)") {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// eventually retries f every 100ms until it returns nil or d passes.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNativeBundle runs a bundle whose module is a native binary: packed
// with `latch plugin pack`, signed, refused without a binary for this
// platform, installed with a secret in its configuration (sealed in the
// store, masked in listings, seen by the plugin through its configuration
// and through the secrets host call), used in logins, enabled and disabled
// per tenant live through the CLI and the admin API, its processes killed
// with SIGKILL under load (logins fail closed, the server keeps serving,
// the processes come back), a tampered extracted binary refused before
// exec, upgraded, rolled back and removed.
func TestNativeBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and a native plugin")
	}
	if runtime.GOOS != "linux" {
		t.Skip("finds the plugin's processes through /proc")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "latch")
	goBuild(t, bin, "./cmd/latch")
	vault := filepath.Join(dir, "vault-bin")
	goBuild(t, vault, "./conformance/bundle/testdata/vault")
	c := cli{t: t, bin: bin}
	pub := strings.TrimSpace(c.must("bundle", "keygen", "-o", filepath.Join(dir, "signer")))
	key := filepath.Join(dir, "signer.key")
	v1 := packNative(t, c, dir, vault, "1.0.0", runtime.GOOS, runtime.GOARCH, key)
	v2 := packNative(t, c, dir, vault, "1.1.0", runtime.GOOS, runtime.GOARCH, key)
	elsewhere := packNative(t, c, dir, vault, "1.0.0", "plan9", "arm", key)

	data := filepath.Join(dir, "data")
	binDir := filepath.Join(data, "bundles")
	srv := live.StartWith(t, live.Options{DataDir: data, Env: []string{"LATCH_BUNDLES_TRUSTED_KEYS=" + pub, "LATCH_HTTP_BODY_LIMIT=64MiB"}})
	t.Cleanup(func() { // the plugin processes of a failed run
		for _, pid := range pluginPids(t, binDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	pinUser(t, data)
	c.env = []string{"LATCH_URL=" + srv.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret}
	if code := srv.Admin(http.MethodPost, "/tenants", map[string]any{"name": "acme", "display_name": "Acme", "enabled": true}, nil); code != http.StatusCreated {
		t.Fatalf("creating tenant acme: %d", code)
	}
	vaultClient := map[string]any{
		"client_id": "vault-app", "name": "Vault App", "public": true, "token_endpoint_auth_method": "none", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{"vault.pin"}}}}},
		"enabled":  true,
	}
	if code := srv.Admin(http.MethodPost, "/clients", vaultClient, nil); code != http.StatusCreated {
		t.Fatalf("creating the default tenant's client: %d", code)
	}
	if code := adminAt(t, srv, "acme", http.MethodPost, "/clients", vaultClient); code != http.StatusCreated {
		t.Fatalf("creating acme's client: %d", code)
	}
	acme := srv.URL + "/t/acme"
	const pin = "80413927"

	// No binary for this platform: refused, nothing stored.
	if out, err := c.run("bundle", "install", elsewhere, "--grant", "secrets", "--config", `{"pin":"`+pin+`"}`); err == nil ||
		!strings.Contains(out, "no module for "+runtime.GOOS+"/"+runtime.GOARCH+" (it ships plan9/arm)") {
		t.Fatalf("install without a binary for this platform: %v %s", err, out)
	}

	// Install for the default tenant only, with the PIN as a secret.
	out := c.must("bundle", "install", v1, "--grant", "secrets", "--tenant", "default", "--config", `{"pin":"`+pin+`"}`)
	if runs(t, out) != "1.0.0" || strings.Contains(out, pin) || !strings.Contains(out, `"pin": "********"`) {
		t.Fatalf("install answered:\n%s", out)
	}
	pids := pluginPids(t, binDir)
	if len(pids) == 0 {
		t.Fatal("no plugin process runs after the install")
	}
	checkExtracted(t, binDir)
	if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
		t.Fatalf("login with the native bundle: %v", err)
	}
	if _, err := loginAt(srv.URL, "vault-app", "0000"); err == nil {
		t.Fatal("a wrong PIN logged in")
	}
	// The secret: sealed in the store, masked in the listing, never logged.
	list := c.must("bundle", "list")
	if strings.Contains(list, pin) || !strings.Contains(list, `"secrets": [`) {
		t.Errorf("the listing shows the secret or not its name:\n%s", list)
	}
	storedRowsLackSecret(t, data, pin)
	// Through the secrets host call instead of the configuration; the PIN
	// is left out of the new configuration and kept.
	c.must("bundle", "configure", "vault", "--config", `{"via_host":true}`)
	if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
		t.Fatalf("login with the PIN read through the secrets host call: %v", err)
	}

	// Per tenant, live: not offered in acme until enabled there (CLI),
	// then taken away from the default tenant (admin API).
	if offered, err := loginAt(acme, "vault-app", pin); offered || err == nil {
		t.Fatalf("acme was offered the bundle's authenticator before it was enabled there (%v)", err)
	}
	c.must("bundle", "enable", "vault", "--tenant", "acme")
	if offered, _ := loginAt(acme, "vault-app", pin); !offered {
		t.Fatal("acme is not offered the authenticator after enable --tenant acme")
	}
	var answer map[string]any
	if code := srv.Admin(http.MethodDelete, "/bundles/vault/tenants/default", nil, &answer); code != http.StatusOK {
		t.Fatalf("disabling the default tenant: %d %v", code, answer)
	}
	if offered, err := loginAt(srv.URL, "vault-app", pin); offered || err == nil {
		t.Fatalf("the default tenant still uses the bundle after it was disabled there (%v)", err)
	}
	if code := srv.Admin(http.MethodDelete, "/bundles/vault/tenants/acme", nil, &answer); code != http.StatusConflict {
		t.Errorf("disabling the last tenant: %d %v, want 409", code, answer)
	}
	if code := srv.Admin(http.MethodPut, "/bundles/vault/tenants/default", nil, &answer); code != http.StatusOK {
		t.Fatalf("enabling the default tenant again: %d %v", code, answer)
	}
	if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
		t.Fatalf("login after the default tenant was enabled again: %v", err)
	}

	// kill -9 of every plugin process under load: logins fail closed (no
	// wrong PIN passes), the rest of the server serves, the plugin is back
	// within seconds.
	pids = pluginPids(t, binDir)
	var ok, failed, wrongIn, otherFailed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i == 0 {
					if _, err := loginAt(srv.URL, "vault-app", "0000"); err == nil {
						wrongIn.Add(1)
					}
					resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
					if err != nil || resp.StatusCode != http.StatusOK {
						otherFailed.Add(1)
					}
					if resp != nil {
						_ = resp.Body.Close()
					}
					continue
				}
				if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
	}
	killed := time.Now()
	if err := eventually(15*time.Second, func() error {
		now := pluginPids(t, binDir)
		if len(now) != len(pids) || slices.ContainsFunc(now, func(p int) bool { return slices.Contains(pids, p) }) {
			return fmt.Errorf("plugin processes %v (before the kill %v)", now, pids)
		}
		_, err := loginAt(srv.URL, "vault-app", pin)
		return err
	}); err != nil {
		t.Fatalf("the plugin did not come back after kill -9: %v", err)
	}
	back := time.Since(killed)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("kill -9 of %d plugin processes: back in %v; %d logins ok, %d failed while it was down; %d wrong PINs let in; %d other requests failed",
		len(pids), back.Round(time.Millisecond), ok.Load(), failed.Load(), wrongIn.Load(), otherFailed.Load())
	if wrongIn.Load() != 0 || otherFailed.Load() != 0 {
		t.Errorf("during the outage %d wrong PINs logged in and %d other requests failed", wrongIn.Load(), otherFailed.Load())
	}

	// A binary changed on disk is refused before exec: the plugin stays
	// down (logins fail closed) until the binary is the signed one again.
	exe := extractedBinary(t, binDir)
	good := mustRead(t, exe)
	replace := func(data []byte) { // a running binary cannot be written over, only renamed over
		t.Helper()
		tmp := exe + ".new"
		if err := os.WriteFile(tmp, data, 0o500); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, exe); err != nil {
			t.Fatal(err)
		}
	}
	running := pluginPids(t, binDir)
	replace(append(bytes.Clone(good), "tampered"...))
	for _, pid := range running {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(time.Second)
	if _, err := loginAt(srv.URL, "vault-app", pin); err == nil {
		t.Error("a login passed while the only binary on disk was a tampered one")
	}
	if !strings.Contains(srv.Output(), "checksum") {
		t.Errorf("the server did not report the checksum mismatch:\n%s", srv.Output())
	}
	replace(good)
	if err := eventually(20*time.Second, func() error { _, err := loginAt(srv.URL, "vault-app", pin); return err }); err != nil {
		t.Fatalf("the plugin did not come back with its signed binary: %v", err)
	}

	// Upgrade, roll back, remove.
	if got := runs(t, c.must("bundle", "upgrade", v2)); got != "1.1.0" {
		t.Errorf("after the upgrade the node runs %q", got)
	}
	if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
		t.Errorf("login after the upgrade: %v", err)
	}
	out = c.must("bundle", "rollback", "vault")
	if got := runs(t, out); got != "1.0.0" {
		t.Errorf("after the roll back the node runs %q", got)
	}
	if _, err := loginAt(srv.URL, "vault-app", pin); err != nil {
		t.Errorf("login after the roll back: %v", err)
	}
	c.must("bundle", "remove", "vault")
	if offered, err := loginAt(srv.URL, "vault-app", pin); offered || err == nil {
		t.Errorf("a login used the removed bundle (%v)", err)
	}
	if err := eventually(5*time.Second, func() error {
		if p := pluginPids(t, binDir); len(p) > 0 {
			return fmt.Errorf("plugin processes %v still run after remove", p)
		}
		if left, _ := os.ReadDir(binDir); len(left) > 0 {
			return fmt.Errorf("extracted binaries left after remove: %d folders", len(left))
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if strings.Contains(srv.Output(), pin) {
		t.Errorf("the server logged the secret PIN:\n%s", srv.Output())
	}
}

// checkExtracted checks the modes of the extracted binaries: folders 0700,
// binaries 0500.
func checkExtracted(t *testing.T, binDir string) {
	t.Helper()
	exe := extractedBinary(t, binDir)
	for path, want := range map[string]os.FileMode{binDir: 0o700, filepath.Dir(exe): 0o700, exe: 0o500} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// extractedBinary is the one extracted binary under binDir.
func extractedBinary(t *testing.T, binDir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(binDir, "*", "plugin"))
	if err != nil || len(m) != 1 {
		t.Fatalf("extracted binaries: %v %v", m, err)
	}
	return m[0]
}

// storedRowsLackSecret reads the bundle rows and checks that no column
// holds the plaintext secret, and that sealed secrets are stored.
func storedRowsLackSecret(t *testing.T, data, secret string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(data, config.DefaultSQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	rows, err := st.ListBundles(ctx)
	if err != nil || len(rows) == 0 {
		t.Fatalf("ListBundles: %v %v", rows, err)
	}
	for _, r := range rows {
		full, err := st.GetBundle(ctx, r.Name, r.Version)
		if err != nil {
			t.Fatal(err)
		}
		if full.Install == nil || len(full.Install.Secrets) == 0 {
			t.Errorf("bundle %s %s: no sealed secrets stored", r.Name, r.Version)
			continue
		}
		raw, _ := json.Marshal(full)
		for _, b := range [][]byte{raw, full.Manifest, full.Archive, full.Install.Config, full.Install.Secrets} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("bundle %s %s: the stored row holds the plaintext secret", r.Name, r.Version)
			}
		}
	}
}

// adminAt calls a tenant's admin API and returns the status.
func adminAt(t *testing.T, srv *live.Server, tenant, method, path string, body any) int {
	t.Helper()
	bs, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, srv.URL+"/t/"+tenant+"/api/admin/v1"+path, bytes.NewReader(bs))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("latch-admin", live.AdminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	return resp.StatusCode
}
