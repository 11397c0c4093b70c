// Package apply_test runs `latch apply` and `latch export` against a live
// server: a declarative file applied twice (the second time changes
// nothing), a changed flow that becomes a new version which the next login
// follows, a roll back, an export that applies back unchanged, and bad
// files that are refused whole with messages naming the document and the
// field.
package apply_test

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	redirect  = "http://127.0.0.1:9/apply/callback"
	appSecret = "apply-app-secret-0123456789abcdefghijk"
	alicePass = "alice-password-42"
)

// file is the declarative state the test applies: every kind but Bundle
// (conformance/bundle covers bundles), a flow and a client that names it,
// and secrets given as ${ENV} references.
const file = `# The state of the server, as the test wants it.
apiVersion: latch/v1
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme Corp}
---
apiVersion: latch/v1
kind: Role
metadata: {name: admin}
spec:
  description: Administrators
  permissions: [all]
---
apiVersion: latch/v1
kind: Group
metadata: {name: ops}
spec: {description: Operations}
---
apiVersion: latch/v1
kind: User
metadata: {name: alice}
spec:
  password: ${ALICE_PASSWORD}
  email: alice@example.com
  enabled: true
  groups: [ops]
  roles: [admin]
---
apiVersion: latch/v1
kind: Flow
metadata: {name: admins-mfa}
spec:
  steps:
    - options: [password]
---
apiVersion: latch/v1
kind: Flow
metadata: {name: basic, tenant: acme}
spec:
  steps:
    - options: [password]
---
apiVersion: latch/v1
kind: Client
metadata: {name: mfa-app}
spec:
  name: MFA App
  client_secret: ${APP_SECRET}
  first_party: true
  redirect_uris: [` + redirect + `]
  grant_types: [authorization_code]
  scopes: [openid]
  settings:
    authentication: {flow: admins-mfa}
`

// twoSteps is the flow changed to ask for TOTP after the password, with a
// script that says so in the log.
const twoSteps = `
    - options: [password]
    - options: [totp]
  script: |
    var onLoginRequest = function (context) {
        executeStep(1, { onSuccess: function (context) { executeStep(2); } });
    };
`

type cli struct {
	t   *testing.T
	bin string
	env []string
	dir string
}

// run runs latch with args; it returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// apply writes content to a file and applies it.
func (c *cli) apply(content string, flags ...string) (string, string, int) {
	c.t.Helper()
	p := filepath.Join(c.dir, "state.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return c.run(append([]string{"apply", "-f", p}, flags...)...)
}

// mustApply applies content and fails unless it succeeds.
func (c *cli) mustApply(content string, flags ...string) string {
	c.t.Helper()
	out, stderr, code := c.apply(content, flags...)
	if code != 0 {
		c.t.Fatalf("latch apply: exit %d\n%s%s", code, out, stderr)
	}
	return out
}

func TestApply(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	s := live.Start(t)
	c := &cli{t: t, bin: live.Binary(t), dir: t.TempDir(), env: []string{
		"LATCH_URL=" + s.URL, "LATCH_ADMIN_CLIENT_SECRET=" + live.AdminSecret,
		"ALICE_PASSWORD=" + alicePass, "APP_SECRET=" + appSecret,
	}}

	out := c.mustApply(file)
	for _, want := range []string{
		"tenant/acme: created", "role/admin (tenant default): created", "group/ops (tenant default): created",
		"user/alice (tenant default): created", "flow/admins-mfa (tenant default): created (version 1)",
		"flow/basic (tenant acme): created (version 1)", "client/mfa-app (tenant default): created",
		"7 created, 0 updated, 0 unchanged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply: no %q in\n%s", want, out)
		}
	}
	out = c.mustApply(file)
	if !strings.Contains(out, "0 created, 0 updated, 7 unchanged") {
		t.Fatalf("second apply changed something:\n%s", out)
	}
	var roles struct{ Items []struct{ Name string } }
	var users struct{ Items []struct{ ID string } }
	s.Admin(http.MethodGet, "/users?username=alice", nil, &users)
	if len(users.Items) != 1 {
		t.Fatalf("alice: %+v", users)
	}
	s.Admin(http.MethodGet, "/users/"+users.Items[0].ID+"/roles", nil, &roles)
	if len(roles.Items) != 1 || roles.Items[0].Name != "admin" {
		t.Errorf("alice's roles: %+v", roles)
	}

	// Logins through mfa-app follow the flow it names: the password only.
	oc := &oauth2.Config{ClientID: "mfa-app", ClientSecret: appSecret, RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	b := newBrowser(t)
	p := login(t, b, oc, "alice", alicePass)
	if codeOf(p) == "" {
		t.Fatalf("password-only flow: want a code, got %s\n%s", p, p.Body)
	}

	// A changed flow is a new version; nothing else changes. A dry run
	// shows it first and changes nothing.
	changed := strings.Replace(file, "\n    - options: [password]\n---\napiVersion: latch/v1\nkind: Flow\nmetadata: {name: basic",
		twoSteps+"---\napiVersion: latch/v1\nkind: Flow\nmetadata: {name: basic", 1)
	if changed == file {
		t.Fatal("the test did not change the flow")
	}
	out = c.mustApply(changed, "--dry-run")
	if !strings.Contains(out, "flow/admins-mfa (tenant default): would be updated") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run:\n%s", out)
	}
	var flow struct {
		Version int
		Steps   []struct{ Options []string }
	}
	if s.Admin(http.MethodGet, "/flows/admins-mfa", nil, &flow); flow.Version != 1 {
		t.Fatalf("after a dry run the flow is at version %d", flow.Version)
	}
	out = c.mustApply(changed)
	if !strings.Contains(out, "flow/admins-mfa (tenant default): updated (version 2)") || !strings.Contains(out, "0 created, 1 updated, 6 unchanged") {
		t.Fatalf("apply of a changed flow:\n%s", out)
	}

	// The next login asks for TOTP after the password (enrolment first).
	b = newBrowser(t)
	p = login(t, b, oc, "alice", alicePass)
	m := regexp.MustCompile(`enter the key ([A-Z2-7]{16,})`).FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || m == nil {
		t.Fatalf("two-step flow: want the TOTP enrolment page, got %s\n%s", p, p.Body)
	}
	code, err := totp.GenerateCodeCustom(m[1], time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	if p = b.Submit(p, map[string]string{"code": code}, redirect); codeOf(p) == "" {
		t.Fatalf("after the TOTP code: want a code, got %s\n%s", p, p.Body)
	}

	// Roll back to version 1 with the CLI: version 3 is version 1 again,
	// and logins are back to the password only.
	out, stderr, exit := c.run("admin", "flows", "rollback", "admins-mfa", "1")
	if exit != 0 || !strings.Contains(out, `"version": 3`) {
		t.Fatalf("rollback: exit %d %s%s", exit, out, stderr)
	}
	out, _, _ = c.run("admin", "flows", "versions", "admins-mfa")
	if !strings.Contains(out, "rolled back to version 1") {
		t.Errorf("versions after the roll back:\n%s", out)
	}
	b = newBrowser(t)
	if p = login(t, b, oc, "alice", alicePass); codeOf(p) == "" {
		t.Fatalf("after the roll back: want a code after the password, got %s\n%s", p, p.Body)
	}
	// The file still says two steps: applying it is a new version again.
	if out = c.mustApply(changed); !strings.Contains(out, "flow/admins-mfa (tenant default): updated (version 4)") {
		t.Fatalf("re-apply after the roll back:\n%s", out)
	}

	// An export applies back without a change, here and in tenant acme.
	exported, stderr, exit := c.run("export", "--kind", "Role,Group,Flow,Client")
	if exit != 0 || !strings.Contains(exported, "kind: Flow") || !strings.Contains(exported, "executeStep(2)") {
		t.Fatalf("export: exit %d\n%s%s", exit, exported, stderr)
	}
	if strings.Contains(exported, appSecret) || strings.Contains(exported, "client_secret:") {
		t.Errorf("export holds the client secret:\n%s", exported)
	}
	if out = c.mustApply(exported); !strings.Contains(out, " 0 updated") || !strings.Contains(out, "0 created") {
		t.Fatalf("applying the export changed something:\n%s\nexport:\n%s", out, exported)
	}
	exported, _, _ = c.run("export", "--tenant", "acme")
	if out = c.mustApply(exported); !strings.Contains(out, "flow/basic (tenant acme): unchanged") {
		t.Fatalf("applying acme's export:\n%s\nexport:\n%s", out, exported)
	}

	// --prune deletes the flows and clients the file does not describe,
	// never the admin client it runs as; a dry run only lists them.
	if code := s.Admin(http.MethodPut, "/flows/stray", map[string]any{"steps": []any{map[string]any{"options": []string{"password"}}}}, nil); code != http.StatusCreated {
		t.Fatalf("creating a stray flow: %d", code)
	}
	if code := s.Admin(http.MethodPost, "/clients", map[string]any{"client_id": "stray-app", "redirect_uris": []string{redirect}}, nil); code != http.StatusCreated {
		t.Fatalf("creating a stray client: %d", code)
	}
	out = c.mustApply(changed, "--prune", "--dry-run")
	if !strings.Contains(out, "flow/stray (tenant default): would be deleted") || !strings.Contains(out, "client/stray-app (tenant default): would be deleted") ||
		!strings.Contains(out, "2 deleted") || strings.Contains(out, "latch-admin") {
		t.Fatalf("prune dry run:\n%s", out)
	}
	if code := s.Admin(http.MethodGet, "/flows/stray", nil, nil); code != http.StatusOK {
		t.Fatalf("a dry run pruned a flow: %d", code)
	}
	out = c.mustApply(changed, "--prune")
	if !strings.Contains(out, "flow/stray (tenant default): deleted") || !strings.Contains(out, "0 created, 0 updated, 7 unchanged, 2 deleted") {
		t.Fatalf("prune:\n%s", out)
	}
	if code := s.Admin(http.MethodGet, "/flows/stray", nil, nil); code != http.StatusNotFound {
		t.Errorf("pruned flow still there: %d", code)
	}

	// A dry run plans objects in a tenant the same file creates.
	out = c.mustApply("apiVersion: latch/v1\nkind: Flow\nmetadata: {name: f, tenant: beta}\nspec: {steps: [{options: [password]}]}\n"+
		"---\napiVersion: latch/v1\nkind: Tenant\nmetadata: {name: beta}\n", "--dry-run")
	if !strings.Contains(out, "tenant/beta: would be created") || !strings.Contains(out, "flow/f (tenant beta): would be created") {
		t.Errorf("dry run in a new tenant:\n%s", out)
	}
	if code := s.Admin(http.MethodGet, "/tenants/beta", nil, nil); code != http.StatusNotFound {
		t.Errorf("a dry run created a tenant: %d", code)
	}

	t.Run("BadFiles", func(t *testing.T) {
		for name, tc := range map[string]struct {
			content string
			want    []string
		}{
			"unknown spec field": {
				content: "apiVersion: latch/v1\nkind: Tenant\nmetadata: {name: never}\n---\napiVersion: latch/v1\nkind: Flow\nmetadata: {name: f}\nspec:\n  steps: [{options: [password]}]\n  stepz: 1\n",
				want:    []string{"document 2 (line 10): spec.stepz: unknown field", "nothing applied"},
			},
			"unset variable": {
				content: "apiVersion: latch/v1\nkind: Tenant\nmetadata: {name: never}\nspec: {display_name: '${NOT_SET_ANYWHERE}'}\n",
				want:    []string{"document 1 (line 4): spec.display_name: environment variable NOT_SET_ANYWHERE is not set"},
			},
			"wrong type": {
				content: "apiVersion: latch/v1\nkind: Client\nmetadata: {name: x}\nspec: {redirect_uris: https://x.example}\n",
				want:    []string{"document 1 (line 4): spec.redirect_uris: must be a list of strings"},
			},
			"unknown kind": {
				content: "apiVersion: latch/v1\nkind: Gadget\nmetadata: {name: x}\n",
				want:    []string{"document 1 (line 1): kind: must be one of"},
			},
			"not yaml": {
				content: "apiVersion: latch/v1\nkind: [\n",
				want:    []string{"document 1", "not valid YAML"},
			},
			"duplicate": {
				content: "apiVersion: latch/v1\nkind: Role\nmetadata: {name: r}\n---\napiVersion: latch/v1\nkind: Role\nmetadata: {name: r}\n",
				want:    []string{"document 2 (line 5): metadata.name: Role \"r\" is also described by document 1"},
			},
		} {
			_, stderr, code := c.apply(tc.content)
			if code == 0 {
				t.Errorf("%s: applied", name)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s: no %q in\n%s", name, w, stderr)
				}
			}
		}
		// Nothing of a refused file was applied.
		if code := s.Admin(http.MethodGet, "/tenants/never", nil, nil); code != http.StatusNotFound {
			t.Errorf("a tenant of a refused file exists: %d", code)
		}
		// The server refuses what only it can check, and the message
		// names the document.
		_, stderr, code := c.apply("apiVersion: latch/v1\nkind: Flow\nmetadata: {name: bad}\nspec:\n  steps: [{options: [no-such-authenticator]}]\n")
		if code == 0 || !strings.Contains(stderr, `document 1 (line 1, Flow "bad")`) || !strings.Contains(stderr, "no-such-authenticator") {
			t.Errorf("unknown authenticator: exit %d\n%s", code, stderr)
		}
		_, stderr, code = c.apply("apiVersion: latch/v1\nkind: Flow\nmetadata: {name: bad}\nspec:\n  steps: [{options: [password]}]\n  script: 'var onLoginRequest = function ('\n")
		if code == 0 || !strings.Contains(stderr, "script") {
			t.Errorf("script that does not compile: exit %d\n%s", code, stderr)
		}
	})
}

// browser and page are the suites' shared live.Browser and live.Page;
// the suite's browsers stop at redirects to the client's redirect URI.
type (
	browser = live.Browser
	page    = live.Page
)

func newBrowser(t *testing.T) *browser { return live.NewBrowser(t) }

// codeOf is the authorization code of a redirect to the client, or "".
func codeOf(p page) string {
	if !strings.HasPrefix(p.Location, redirect) {
		return ""
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		return ""
	}
	return u.Query().Get("code")
}

// login starts an authorization request and signs in with the password.
func login(t *testing.T, b *browser, oc *oauth2.Config, user, pass string) page {
	t.Helper()
	p := b.Get(oc.AuthCodeURL("state-apply", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), redirect)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("want the login page, got %s\n%s", p, p.Body)
	}
	return b.Submit(p, map[string]string{"username": user, "password": pass}, redirect)
}
