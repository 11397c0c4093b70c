package ldap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/scim"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/builtin/userstore/local"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

const (
	httpAdminID     = "latch-admin"
	httpAdminSecret = "test-admin-secret-0123456789abcdefghij"
	scimToken       = "scim-admin-token"
)

type oneToken struct{}

func (oneToken) ValidateSCIMToken(_ context.Context, _ store.Tenant, raw string) (scim.Principal, error) {
	if raw == scimToken {
		return scim.Principal{ClientID: httpAdminID, Subject: httpAdminID, Scopes: []string{scim.ScopeAdmin}}, nil
	}
	return scim.Principal{}, scim.ErrInvalidBearer
}

type dropEvents struct{}

func (dropEvents) Publish(event.Event) bool { return true }

// serve mounts the admin API and SCIM over the domains, as the node does:
// both serve the database's users themselves and the directory's through
// the router's view of the stores that are not userstore.local.
func (d *domains) serve(t *testing.T) string {
	t.Helper()
	ctx := ctxT(t)
	root, err := d.st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.st.CreateClient(ctx, store.Client{TenantID: root.ID, ClientID: httpAdminID,
		SecretHash: secret.HashClientSecret(httpAdminSecret), Scopes: []string{admin.ScopeAdmin}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{BodyLimit: 64 << 10, ShutdownTimeout: 1}, log, prometheus.NewRegistry(), d.st.Ping)
	if err != nil {
		t.Fatal(err)
	}
	view := d.dir.View(func(m router.Member) bool { return m.Instance.ID() != local.ID })
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	admin.New(admin.Deps{Store: d.st, Hasher: hasher, Audit: dropEvents{}, Log: log, Directory: view}).Mount(srv.App())
	scim.New(scim.Deps{Store: d.st, Hasher: hasher, Bearer: oneToken{}, Audit: dropEvents{}, Log: log, Directory: view}).Mount(srv.App())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = srv.App().Shutdown() })
	return "http://" + ln.Addr().String()
}

// do sends a raw JSON request and decodes a JSON object answer.
func do(t *testing.T, method, u string, body string, auth func(*http.Request)) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, u, err, data)
		}
	}
	return resp.StatusCode, m
}

func asAdmin(r *http.Request) { r.SetBasicAuth(httpAdminID, httpAdminSecret) }
func asSCIM(r *http.Request)  { r.Header.Set("Authorization", "Bearer "+scimToken) }

func strs(items any, key string) []string {
	var out []string
	l, _ := items.([]any)
	for _, it := range l {
		m, _ := it.(map[string]any)
		s, _ := m[key].(string)
		out = append(out, s)
	}
	return out
}

func TestDomainsAdminAPI(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	base := d.serve(t) + "/t/" + domainTenant + "/api/admin/v1"

	// The tenant's domains, in search order.
	st, body := do(t, "GET", base+"/userstores", "", asAdmin)
	if st != 200 {
		t.Fatalf("GET /userstores: %d %v", st, body)
	}
	if got := strs(body["items"], "domain"); !slices.Equal(got, []string{"PRIMARY", "LDAP"}) {
		t.Fatalf("domains %v", got)
	}
	if l, _ := body["items"].([]any); l[0].(map[string]any)["writable"] != true || l[1].(map[string]any)["writable"] != false {
		t.Fatalf("writable %v", body)
	}

	// One listing holds both stores' users, small pages across the
	// boundary.
	var names []string
	cursor := ""
	for range 10 {
		st, body = do(t, "GET", base+"/users?limit=2&cursor="+url.QueryEscape(cursor), "", asAdmin)
		if st != 200 {
			t.Fatalf("listing: %d %v", st, body)
		}
		names = append(names, strs(body["items"], "username")...)
		cursor, _ = body["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	slices.Sort(names)
	want := []string{"LDAP/alice", "LDAP/bob", "LDAP/carol", "LDAP/erin", "LDAP/star*(x)", "alice", "dave"}
	if !slices.Equal(names, want) {
		t.Fatalf("listed %v, want %v", names, want)
	}

	st, body = do(t, "GET", base+"/users?username="+url.QueryEscape("LDAP/erin"), "", asAdmin)
	items, _ := body["items"].([]any)
	if st != 200 || len(items) != 1 {
		t.Fatalf("LDAP/erin: %d %v", st, body)
	}
	erin, _ := items[0].(map[string]any)
	if erin["domain"] != "LDAP" || !strings.HasPrefix(erin["id"].(string), "LDAP:") {
		t.Fatalf("erin %v", erin)
	}
	id := erin["id"].(string)
	st, body = do(t, "GET", base+"/users/"+id, "", asAdmin)
	if st != 200 || body["username"] != "LDAP/erin" || body["email"] != "erin@example.org" {
		t.Fatalf("GET erin by id: %d %v", st, body)
	}
	st, body = do(t, "GET", base+"/users/"+id+"/groups", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || !slices.Equal(got, []string{"LDAP/auditors", "LDAP/staff"}) {
		t.Fatalf("erin's groups: %d %v", st, body)
	}
	st, body = do(t, "GET", base+"/groups?limit=100", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || len(got) != 4 || !slices.Contains(got, "operators") || !slices.Contains(got, "LDAP/staff") {
		t.Fatalf("groups: %d %v", st, body)
	}

	// The directory is read-only: writes are refused with a message
	// naming the domain.
	for _, tc := range []struct{ method, path, body string }{
		{"PATCH", "/users/" + id, `{"display_name":"Changed"}`},
		{"DELETE", "/users/" + id, ""},
		{"POST", "/users", `{"username":"LDAP/zed","password":"zed-password-1"}`},
		{"POST", "/users", `{"username":"zed","domain":"LDAP"}`},
	} {
		st, body = do(t, tc.method, base+tc.path, tc.body, asAdmin)
		if st != http.StatusNotImplemented || !strings.Contains(body["message"].(string), "LDAP is read-only") {
			t.Errorf("%s %s: %d %v", tc.method, tc.path, st, body)
		}
	}
	// A new user without a domain goes to the database.
	st, body = do(t, "POST", base+"/users", `{"username":"frank","password":"frank-password-1"}`, asAdmin)
	if st != 201 || body["domain"] != nil {
		t.Fatalf("create frank: %d %v", st, body)
	}
	st, body = do(t, "GET", base+"/users/LDAP:no-such-id", "", asAdmin)
	if st != 404 {
		t.Fatalf("unknown directory id: %d %v", st, body)
	}
}

func TestDomainsSCIM(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	base := d.serve(t) + "/t/" + domainTenant + "/scim2"

	list := func(query string) []string {
		t.Helper()
		st, body := do(t, "GET", base+"/Users?"+query, "", asSCIM)
		if st != 200 {
			t.Fatalf("GET /Users?%s: %d %v", query, st, body)
		}
		return strs(body["Resources"], "userName")
	}
	// userName is not case-exact, so it sorts regardless of case.
	all := list("count=100&sortBy=userName")
	want := []string{"alice", "dave", "LDAP/alice", "LDAP/bob", "LDAP/carol", "LDAP/erin", "LDAP/star*(x)"}
	if !slices.Equal(all, want) {
		t.Fatalf("all users %v, want %v", all, want)
	}
	// Filters run over both stores.
	if got := list("filter=" + url.QueryEscape(`userName eq "alice"`)); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("userName eq alice: %v", got)
	}
	if got := list("filter=" + url.QueryEscape(`userName eq "LDAP/alice"`)); !slices.Equal(got, []string{"LDAP/alice"}) {
		t.Errorf("userName eq LDAP/alice: %v", got)
	}
	if got := list("sortBy=userName&filter=" + url.QueryEscape(`userName sw "LDAP/" and name.givenName pr`)); len(got) != 5 {
		t.Errorf("directory users with a given name: %v", got)
	}
	if got := list("sortBy=userName&filter=" + url.QueryEscape(`emails.value ew "example.org" or userName eq "dave"`)); !slices.Equal(got, []string{"dave", "LDAP/alice", "LDAP/bob", "LDAP/carol", "LDAP/erin", "LDAP/star*(x)"}) {
		t.Errorf("emails or dave: %v", got)
	}
	if got := list("sortBy=userName&filter=" + url.QueryEscape(`groups.display eq "LDAP/admins" or groups.display eq "operators"`)); !slices.Equal(got, []string{"dave", "LDAP/alice"}) {
		t.Errorf("members of admins or operators: %v", got)
	}
	if got := list("sortBy=userName&startIndex=5&count=2"); !slices.Equal(got, []string{"LDAP/carol", "LDAP/erin"}) {
		t.Errorf("page across the stores: %v", got)
	}

	// A directory user's id routes back to the directory.
	st, body := do(t, "GET", base+"/Users?filter="+url.QueryEscape(`userName eq "LDAP/alice"`), "", asSCIM)
	res, _ := body["Resources"].([]any)
	if st != 200 || len(res) != 1 {
		t.Fatalf("LDAP/alice: %d %v", st, body)
	}
	id := res[0].(map[string]any)["id"].(string)
	st, body = do(t, "GET", base+"/Users/"+id, "", asSCIM)
	if st != 200 || body["userName"] != "LDAP/alice" {
		t.Fatalf("GET LDAP/alice: %d %v", st, body)
	}
	if got := strs(body["groups"], "display"); !slices.Equal(got, []string{"LDAP/admins", "LDAP/staff"}) {
		t.Errorf("LDAP/alice's groups: %v", got)
	}
	// Groups of both stores; a directory group reads by its id.
	st, body = do(t, "GET", base+"/Groups?sortBy=displayName", "", asSCIM)
	if got := strs(body["Resources"], "displayName"); st != 200 || !slices.Equal(got, []string{"LDAP/admins", "LDAP/auditors", "LDAP/staff", "operators"}) {
		t.Fatalf("groups: %d %v", st, got)
	}
	gid := strs(body["Resources"], "id")[0]
	if st, body = do(t, "GET", base+"/Groups/"+gid, "", asSCIM); st != 200 || body["displayName"] != "LDAP/admins" {
		t.Fatalf("GET a directory group: %d %v", st, body)
	}

	// Writes to the read-only directory are refused in SCIM's error form.
	for _, tc := range []struct{ method, path, body string }{
		{"PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"X"}]}`},
		{"PUT", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"LDAP/alice"}`},
		{"DELETE", "/Users/" + id, ""},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"LDAP/zed"}`},
		{"DELETE", "/Groups/" + gid, ""},
	} {
		st, body = do(t, tc.method, base+tc.path, tc.body, asSCIM)
		if st != 400 || body["scimType"] != "mutability" || !strings.Contains(body["detail"].(string), "LDAP") {
			t.Errorf("%s %s: %d %v", tc.method, tc.path, st, body)
		}
	}
	// The database's users are written as before.
	st, body = do(t, "POST", base+"/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"grace"}`, asSCIM)
	if st != 201 || strings.Contains(body["id"].(string), ":") {
		t.Fatalf("create grace: %d %v", st, body)
	}
}
