package scim

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

// The directory of the user store domain test: a real slapd on loopback.
const (
	ldapSuffix = "dc=example,dc=org"
	ldapAdmin  = "cn=admin," + ldapSuffix
	ldapPW     = "admin-secret"
	ldapPeople = "ou=people," + ldapSuffix
	ldapGroups = "ou=groups," + ldapSuffix
)

// startSlapd runs slapd on a free loopback port, seeded with two users and
// a group, or skips the test when slapd is not installed.
func startSlapd(t *testing.T) string {
	t.Helper()
	bin := "/usr/sbin/slapd"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("slapd is not installed (apt-get install slapd); the user store domain test needs a real directory")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
database mdb
maxsize 67108864
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
dbnosync
`, dir, ldapSuffix, ldapAdmin, ldapPW), 0o600); err != nil {
		t.Fatal(err)
	}
	u := fmt.Sprintf("ldap://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-d", "0", "-h", u+"/", "-f", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var c *goldap.Conn
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err = goldap.DialURL(u); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer func() { _ = c.Close() }()
	if err := c.Bind(ldapAdmin, ldapPW); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		dn    string
		attrs map[string][]string
	}{
		{ldapSuffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}},
		{ldapPeople, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}},
		{ldapGroups, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}}},
		{"uid=ann," + ldapPeople, map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {"ann"}, "cn": {"Ann Lee"},
			"sn": {"Lee"}, "givenName": {"Ann"}, "mail": {"ann@example.org"}, "userPassword": {"ann-password"}, "departmentNumber": {"CC-7"}}},
		{"uid=ben," + ldapPeople, map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {"ben"}, "cn": {"Ben Ng"},
			"sn": {"Ng"}, "mail": {"ben@example.org"}, "userPassword": {"ben-password"}}},
		{"cn=eng," + ldapGroups, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"eng"}, "member": {"uid=ann," + ldapPeople}}},
	} {
		req := goldap.NewAddRequest(e.dn, nil)
		for k, v := range e.attrs {
			req.Attribute(k, v)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("seeding %s: %v", e.dn, err)
		}
	}
	return u
}

// TestUserStoreDomainsLive runs the server with the local store (primary)
// and a read-only LDAP directory (domain LDAP) in latch.yaml: the admin API
// and SCIM list and filter the users of both, route directory ids back to
// the directory, refuse writes to it, and the claim dialect routes map a
// directory attribute to a claim.
func TestUserStoreDomainsLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	ldapURL := startSlapd(t)
	srv := startWithDirectory(t, ldapURL)

	var stores map[string]any
	if st := srv.Admin("GET", "/userstores", nil, &stores); st != 200 {
		t.Fatalf("GET /userstores: %d %v", st, stores)
	}
	items, _ := stores["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["domain"] != "PRIMARY" || items[0].(map[string]any)["writable"] != true ||
		items[1].(map[string]any)["domain"] != "LDAP" || items[1].(map[string]any)["writable"] != false {
		t.Fatalf("user stores %v", stores)
	}
	var users map[string]any
	if st := srv.Admin("GET", "/users?limit=1000", nil, &users); st != 200 {
		t.Fatalf("GET /users: %d %v", st, users)
	}
	var names []string
	for _, it := range users["items"].([]any) {
		names = append(names, it.(map[string]any)["username"].(string))
	}
	if !slices.Contains(names, "LDAP/ann") || !slices.Contains(names, "LDAP/ben") || len(names) < 3 {
		t.Fatalf("admin users %v", names)
	}

	tok := token(t, srv.URL+"/oauth2/token", "latch-admin", live.AdminSecret, "latch:admin")
	sc := client{t: t, base: srv.URL + "/scim2", token: tok}
	a := sc.do("GET", "/Users?sortBy=userName&filter="+url.QueryEscape(`userName sw "LDAP/"`), nil).want(t, 200)
	res, _ := a.body["Resources"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["userName"] != "LDAP/ann" {
		t.Fatalf("directory users: %s", a.raw)
	}
	ann := res[0].(map[string]any)
	id := ann["id"].(string)
	if !strings.HasPrefix(id, "LDAP:") {
		t.Fatalf("directory id %q", id)
	}
	a = sc.do("GET", "/Users/"+url.PathEscape(id), nil).want(t, 200)
	if g, _ := a.body["groups"].([]any); len(g) != 1 || g[0].(map[string]any)["display"] != "LDAP/eng" {
		t.Fatalf("ann's groups: %s", a.raw)
	}
	a = sc.do("GET", "/Users?filter="+url.QueryEscape(`emails.value eq "ben@example.org" or userName eq "admin"`), nil).want(t, 200)
	if a.body["totalResults"] != float64(2) {
		t.Fatalf("filter across both stores: %s", a.raw)
	}
	sc.do("PATCH", "/Users/"+url.PathEscape(id), map[string]any{"schemas": []any{patchSchema},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "X"}}}).wantError(t, 400, "mutability")
	sc.do("DELETE", "/Users/"+url.PathEscape(id), nil).wantError(t, 400, "mutability")

	// A custom claim read from the directory's departmentNumber.
	var out map[string]any
	if st := srv.Admin("PUT", "/claims/local", map[string]any{"uri": "http://example.com/claims/cost_center", "name": "cost_center",
		"attribute_mappings": map[string]string{"LDAP": "departmentNumber"}}, &out); st != http.StatusOK {
		t.Fatalf("PUT /claims/local: %d %v", st, out)
	}
	if st := srv.Admin("PUT", "/claims/dialects/oidc", map[string]any{"claim": "cost_center", "local_claim": "cost_center"}, &out); st != http.StatusOK {
		t.Fatalf("PUT /claims/dialects/oidc: %d %v", st, out)
	}
	if st := srv.Admin("GET", "/claims/dialects/oidc", nil, &out); st != http.StatusOK || !strings.Contains(fmt.Sprint(out), "http://example.com/claims/cost_center") {
		t.Fatalf("GET /claims/dialects/oidc: %d %v", st, out)
	}

	// A database user keeps the claim in the attribute of its name; the
	// ID token and UserInfo of an application carry it, read by go-oidc.
	out = nil
	if st := srv.Admin("POST", "/users", map[string]any{"username": "dora", "password": "dora-password-42",
		"email": "dora@example.com", "attributes": map[string]any{"cost_center": "CC-LOCAL"}}, &out); st != http.StatusCreated {
		t.Fatalf("creating dora: %d %v", st, out)
	}
	const redirect = "http://127.0.0.1:9/app/callback"
	out = nil
	if st := srv.Admin("POST", "/clients", map[string]any{"client_id": "app", "client_secret": "app-secret-0123456789abcdefghijklmnop",
		"name": "App", "first_party": true, "redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code"},
		"scopes": []string{"openid", "profile", "email"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true}, &out); st != http.StatusCreated {
		t.Fatalf("creating the client: %d %v", st, out)
	}
	app := &oauth2.Config{ClientID: "app", ClientSecret: "app-secret-0123456789abcdefghijklmnop", RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile"}}
	idt, info, _ := browserSignIn(t, srv, app, "dora", "dora-password-42")
	var inToken, inInfo struct {
		CostCenter string `json:"cost_center"`
		Email      string `json:"email"`
	}
	if err := idt.Claims(&inToken); err != nil {
		t.Fatal(err)
	}
	if err := info.Claims(&inInfo); err != nil {
		t.Fatal(err)
	}
	if inToken.CostCenter != "CC-LOCAL" || inInfo.CostCenter != "CC-LOCAL" {
		t.Fatalf("cost_center: ID token %q, UserInfo %q", inToken.CostCenter, inInfo.CostCenter)
	}
	if inToken.Email != "" || inInfo.Email != "" {
		t.Fatalf("email released without the email scope: %q %q", inToken.Email, inInfo.Email)
	}
}

// startWithDirectory runs the server with the local store (primary) and
// the read-only LDAP directory at ldapURL as domain LDAP, with the
// password authenticator and the claim dialect mapper.
func startWithDirectory(t *testing.T, ldapURL string) *live.Server {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	yaml := fmt.Sprintf(`extensions:
  instances:
    - {name: local, module: userstore.local}
    - name: corp
      module: userstore.ldap
      config:
        urls: [%q]
        allow_insecure: true
        bind_dn: %q
        bind_password: %q
        users: {base_dn: %q}
        groups: {base_dn: %q}
    - {name: authn.password, module: authn.password}
    - {name: claims.dialect, module: claims.dialect}
  default:
    userstore: [local, corp]
  userstores:
    domains: {corp: LDAP}
`, ldapURL, ldapAdmin, ldapPW, ldapPeople, ldapGroups)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return live.Start(t, "LATCH_CONFIG="+cfg)
}
