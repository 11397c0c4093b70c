// Package bundle_test drives the plugin bundle lifecycle end to end
// against a real `latch serve`, with the real `latch bundle` commands: a
// bundle is packed, signed, refused in every way it should be, installed,
// used in a browser login, upgraded twice under a running load of logins
// with no failed login, rolled back and removed.
package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/html"

	"github.com/latchid/latch/conformance/internal/live"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// root is the module's root folder.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goBuild builds a package of the module into out.
func goBuild(t *testing.T, out, pkg string, env ...string) {
	t.Helper()
	args := []string{"build", "-o", out}
	if len(env) > 0 {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root()
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

// cli runs the latch binary with the admin credentials of srv.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

func (c cli) run(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("latch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const manifestTmpl = `name: pin
version: %s
abi_version: "%s"
description: The PIN authenticator of the kernel's tests.
extensions:
  - {kind: authenticator, name: pin}
  - {kind: throttler, name: always}
  - {kind: claims, name: upper}
%s
config_schema:
  type: object
  properties:
    pin: {type: string, pattern: "^[0-9]{4,8}$"}
  additionalProperties: false
modules:
  wasm: modules/pin.wasm
`

// pack writes a manifest beside the module and packs it with the CLI.
func pack(t *testing.T, c cli, dir, wasm, version, abi, caps, key string) string {
	t.Helper()
	src := filepath.Join(dir, "src-"+version+"-"+abi+fmt.Sprint(len(caps)))
	if err := os.MkdirAll(filepath.Join(src, "modules"), 0o750); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "modules", "pin.wasm"), data, 0o600); err != nil { //nolint:gosec // G703: the test's own temporary folder
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "latch-bundle.yaml"), []byte(fmt.Sprintf(manifestTmpl, version, abi, caps)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(src, "pin.bundle.tar.gz")
	c.must("bundle", "pack", "-m", filepath.Join(src, "latch-bundle.yaml"), "-o", out)
	if key != "" {
		c.must("bundle", "sign", "--key", key, out)
	}
	return out
}

// rewrite rewrites an archive's files through edit, keeping the rest (and
// not fixing any digest).
func rewrite(t *testing.T, in, out string, edit func(name string, data []byte) []byte) {
	t.Helper()
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(h.Name, data)
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// browser is a cookie-keeping client that stops at redirects.
type browser struct{ c *http.Client }

// follow GETs u and follows redirects until a page, or a redirect to stop.
func (b *browser) follow(req *http.Request, stop string) (body, location string, err error) {
	for range 10 {
		resp, err := b.c.Do(req)
		if err != nil {
			return "", "", err
		}
		data, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			if resp.StatusCode != http.StatusOK {
				return string(data), "", fmt.Errorf("%s: status %d: %s", req.URL, resp.StatusCode, data)
			}
			return string(data), req.URL.String(), nil
		}
		u, err := req.URL.Parse(loc)
		if err != nil {
			return "", "", err
		}
		if strings.HasPrefix(u.String(), stop) {
			return "", u.String(), nil
		}
		if req, err = http.NewRequest(http.MethodGet, u.String(), nil); err != nil {
			return "", "", err
		}
	}
	return "", "", fmt.Errorf("too many redirects")
}

// form reads the first form of a page: its action and hidden fields.
func form(body string) (string, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	var action string
	found := false
	fields := url.Values{}
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode {
			get := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch {
			case n.Data == "form" && !found:
				found, in, action = true, true, get("action")
			case n.Data == "input" && in && get("name") != "" && get("value") != "":
				fields.Set(get("name"), get("value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc, false)
	if !found {
		return "", nil, fmt.Errorf("no form on the page: %.300s", body)
	}
	return action, fields, nil
}

const redirect = "http://127.0.0.1:9/pin/callback"

// login runs an authorization request whose only step is the bundle's PIN
// authenticator and returns nil when it ends at the client with a code.
func login(srv *live.Server, pin string) error {
	b := &browser{}
	jar, _ := cookiejar.New(nil)
	b.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {"pin-app"}, "redirect_uri": {redirect}, "scope": {"openid"},
		"state": {"state-pin-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/oauth2/authorize?"+q.Encode(), nil)
	body, at, err := b.follow(req, redirect)
	if err != nil {
		return err
	}
	if !strings.Contains(body, `name="pin"`) {
		return fmt.Errorf("want the PIN form, got %.400s", body)
	}
	action, fields, err := form(body)
	if err != nil {
		return err
	}
	fields.Set("pin", pin)
	base, _ := url.Parse(at)
	target, err := base.Parse(action)
	if err != nil {
		return err
	}
	req, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, loc, err := b.follow(req, redirect)
	if err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, redirect) || u.Query().Get("code") == "" {
		return fmt.Errorf("the login did not end at the client with a code: %q", loc)
	}
	return nil
}

// runs returns the version an admin answer says this node runs.
func runs(t *testing.T, out string) string {
	t.Helper()
	var v struct {
		Version string `json:"version"`
		Running bool   `json:"running"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if !v.Running {
		return ""
	}
	return v.Version
}

func TestBundleLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and a WASM guest")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "latch")
	goBuild(t, bin, "./cmd/latch")
	wasm := filepath.Join(dir, "pin.wasm")
	goBuild(t, wasm, "./kernel/plugin/testdata/guests/pin", "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	c := cli{t: t, bin: bin}

	// Keys, pack, sign.
	pub := strings.TrimSpace(c.must("bundle", "keygen", "-o", filepath.Join(dir, "signer")))
	c.must("bundle", "keygen", "-o", filepath.Join(dir, "stranger"))
	key, stranger := filepath.Join(dir, "signer.key"), filepath.Join(dir, "stranger.key")
	v1 := pack(t, c, dir, wasm, "1.0.0", "1", "", key)
	v11 := pack(t, c, dir, wasm, "1.1.0", "1", "", key)
	v12 := pack(t, c, dir, wasm, "1.2.0", "1", "", key)
	if out := c.must("bundle", "inspect", "--trusted-key", pub, v1); !strings.Contains(out, `"verified": true`) {
		t.Fatalf("inspect: %s", out)
	}

	data := filepath.Join(dir, "data")
	srv := live.StartWith(t, live.Options{DataDir: data, Env: []string{"LATCH_BUNDLES_TRUSTED_KEYS=" + pub, "LATCH_HTTP_BODY_LIMIT=64MiB"}})
	pinUser(t, data)
	c.env = []string{"LATCH_URL=" + srv.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret}
	if code := srv.Admin(http.MethodPost, "/clients", map[string]any{
		"client_id": "pin-app", "name": "PIN App", "public": true, "token_endpoint_auth_method": "none", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid"},
		"settings": map[string]any{"authentication": map[string]any{"steps": []any{map[string]any{"options": []string{"pin.pin"}}}}},
		"enabled":  true,
	}, nil); code != http.StatusCreated {
		t.Fatalf("creating the client: %d", code)
	}

	// Refusals: each with a clear error, and nothing installed.
	tampered := filepath.Join(dir, "tampered.tar.gz")
	rewrite(t, v1, tampered, func(name string, data []byte) []byte {
		if name == "modules/pin.wasm" {
			data = append(bytes.Clone(data), 0)
		}
		return data
	})
	wrongSig := filepath.Join(dir, "wrong-sig.tar.gz")
	if err := os.WriteFile(wrongSig, mustRead(t, v1), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("bundle", "sign", "--key", stranger, wrongSig)
	// ABI version 2: the packer refuses to write it, so the archive is
	// made by rewriting a good one's manifest and digest.
	wrongABI := filepath.Join(dir, "wrong-abi.tar.gz")
	var oldSum, newSum string
	rewrite(t, v1, wrongABI, func(name string, data []byte) []byte {
		if name == "latch-bundle.yaml" {
			oldSum = sum(data)
			data = bytes.Replace(data, []byte(`abi_version: "1"`), []byte(`abi_version: "2"`), 1)
			newSum = sum(data)
		}
		return data
	})
	rewrite(t, wrongABI, wrongABI, func(name string, data []byte) []byte {
		if name == "SHA256SUMS" {
			data = bytes.Replace(data, []byte(oldSum), []byte(newSum), 1)
		}
		return data
	})
	wantsKV := pack(t, c, dir, wasm, "1.0.0", "1", "capabilities: [{name: kv}]", key)
	for _, r := range []struct {
		name string
		args []string
		want string
	}{
		{"tampered archive", []string{tampered}, "does not match its digest"},
		{"wrong signature", []string{wrongSig}, "not in bundles.trusted_keys"},
		{"wrong ABI version", []string{wrongABI}, `this host speaks ABI version "1"`},
		{"schema-invalid config", []string{v1, "--config", `{"pin":"12"}`}, "does not match the bundle's schema"},
		{"missing capability grant", []string{wantsKV, "--config", `{"pin":"1234"}`}, "needs capabilities [kv] granted"},
	} {
		out, err := c.run(append([]string{"bundle", "install"}, r.args...)...)
		if err == nil || !strings.Contains(out, r.want) {
			t.Errorf("%s: install = %v, %q; want a refusal with %q", r.name, err, out, r.want)
		} else {
			t.Logf("%s: %s", r.name, strings.TrimSpace(out))
		}
	}
	if out := c.must("bundle", "list"); strings.Contains(out, `"name"`) {
		t.Fatalf("a refused bundle was stored:\n%s", out)
	}

	// Install and log in with it.
	c.must("bundle", "install", v1, "--config", `{"pin":"1234"}`)
	if err := login(srv, "1234"); err != nil {
		t.Fatalf("login with the installed bundle: %v", err)
	}
	if err := login(srv, "9999"); err == nil {
		t.Fatal("a wrong PIN logged in")
	}

	// Upgrade twice under a running load of logins: none may fail.
	var logins, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				logins.Add(1)
				if err := login(srv, "1234"); err != nil {
					failed.Add(1)
					t.Errorf("login under upgrade: %v", err)
				}
			}
		}()
	}
	for _, v := range []struct{ file, version string }{{v11, "1.1.0"}, {v12, "1.2.0"}} {
		if got := runs(t, c.must("bundle", "upgrade", v.file)); got != v.version {
			t.Errorf("after upgrading to %s the node runs %q", v.version, got)
		}
	}
	// Roll back under the same load.
	out := c.must("bundle", "rollback", "pin")
	close(stop)
	wg.Wait()
	t.Logf("%d logins during two upgrades and a roll back; %d failed", logins.Load(), failed.Load())
	if got := runs(t, out); got != "1.1.0" {
		t.Errorf("after roll back the node runs %q", got)
	}
	list := c.must("bundle", "list")
	for _, want := range []string{`"version": "1.1.0"`, `"state": "enabled"`, `"version": "1.2.0"`, `"state": "previous"`,
		`"pin.pin": "ok"`, `upper is never healthy`} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %s:\n%s", want, list)
		}
	}
	if err := login(srv, "1234"); err != nil {
		t.Fatalf("login after roll back: %v", err)
	}

	// An upgrade asking for more needs a new grant.
	more := pack(t, c, dir, wasm, "2.0.0", "1", "capabilities: [{name: kv}]", key)
	if out, err := c.run("bundle", "upgrade", more); err == nil || !strings.Contains(out, "needs capabilities [kv] granted") {
		t.Errorf("upgrade asking for kv without a grant: %v %s", err, out)
	}
	if out := c.must("bundle", "upgrade", more, "--grant", "kv"); !strings.Contains(out, `"grants": [`) {
		t.Errorf("upgrade with the grant: %s", out)
	}

	// Remove: the login no longer offers the authenticator.
	c.must("bundle", "remove", "pin")
	if err := login(srv, "1234"); err == nil {
		t.Fatal("a login used the removed bundle")
	}
	if out := c.must("bundle", "list"); strings.Contains(out, `"name"`) {
		t.Fatalf("remove left versions:\n%s", out)
	}
}

// pinUser creates the user the PIN authenticator names ("pin-user", an id
// the admin API does not let one choose) in the server's database.
func pinUser(t *testing.T, data string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(data, config.DefaultSQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	tenant, err := st.GetTenantByName(ctx, store.DefaultTenantName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, store.User{ID: "pin-user", TenantID: tenant.ID, Username: "pin-user", Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
