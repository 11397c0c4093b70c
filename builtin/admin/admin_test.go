package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

const (
	adminID     = "latch-admin"
	adminSecret = "test-admin-secret-0123456789abcdefghij"
)

// auditRecorder is a hand-written Auditor that keeps what it is given.
type auditRecorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *auditRecorder) Publish(e event.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return true
}

func (r *auditRecorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Action)+":"+e.Outcome)
	}
	return out
}

type env struct {
	t      testing.TB
	url    string
	store  store.Store
	audit  *auditRecorder
	tenant store.Tenant
}

// newEnv serves the admin API over a real SQLite store on a loopback port.
func newEnv(t testing.TB) *env {
	return newEnvWith(t, password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
}

// newEnvWith is newEnv with the given argon2id parameters.
func newEnvWith(t testing.TB, pp password.Params) *env {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t)
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	km := keys.NewManager(st, box, keys.Options{Logger: log})
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.EnsureKeys(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Client{
		{TenantID: tn.ID, ClientID: adminID, SecretHash: secret.HashClientSecret(adminSecret), Scopes: []string{admin.ScopeAdmin}, Enabled: true},
		{TenantID: tn.ID, ClientID: "plain-app", SecretHash: secret.HashClientSecret(adminSecret), Scopes: []string{"openid"}, Enabled: true},
		{TenantID: tn.ID, ClientID: "disabled-admin", SecretHash: secret.HashClientSecret(adminSecret), Scopes: []string{admin.ScopeAdmin}, Enabled: false},
	} {
		if _, err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{BodyLimit: 64 << 10, ShutdownTimeout: 1}, log, prometheus.NewRegistry(), st.Ping)
	if err != nil {
		t.Fatal(err)
	}
	rec := &auditRecorder{}
	// newEnv's argon2id parameters are cheap: its tests are about the API,
	// not the hash.
	hasher := password.NewHasher(pp)
	admin.New(admin.Deps{Store: st, Hasher: hasher, Keys: km, Audit: rec, Log: log}).Mount(srv.App())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = srv.App().Shutdown() })
	return &env{t: t, url: "http://" + ln.Addr().String(), store: st, audit: rec, tenant: tn}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// call sends a request as the admin client unless auth says otherwise.
func (e *env) call(method, path string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(adminID, adminSecret)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"admin client", basic(adminID, adminSecret), 200, ""},
		{"no credentials", "", 401, "unauthenticated"},
		{"wrong secret", basic(adminID, adminSecret+"x"), 401, "unauthenticated"},
		{"unknown client", basic("nobody", adminSecret), 401, "unauthenticated"},
		{"disabled admin client", basic("disabled-admin", adminSecret), 401, "unauthenticated"},
		{"client without admin scope", basic("plain-app", adminSecret), 403, "forbidden"},
		{"bearer scheme", "Bearer abc", 401, "unauthenticated"},
		{"malformed basic", "Basic !!!", 401, "unauthenticated"},
		{"empty secret", basic(adminID, ""), 401, "unauthenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("GET", "/api/admin/v1/users", nil, "Authorization", tc.auth)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code == "" {
				return
			}
			if got := r.json(t)["code"]; got != tc.code {
				t.Errorf("code %v, want %s", got, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	var failures int
	for _, a := range e.audit.actions() {
		if a == "admin.auth:failure" {
			failures++
		}
	}
	if failures != 7 {
		t.Errorf("audited %d failed admin authentications, want 7 (%v)", failures, e.audit.actions())
	}
}

func TestUserLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/api/admin/v1/users", map[string]any{
		"username": "alice", "password": "correct horse battery", "email": "alice@example.com",
		"attributes": map[string]any{"department": "R&D"},
	})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	u := r.json(t)
	id, _ := u["id"].(string)
	if id == "" || u["username"] != "alice" || u["enabled"] != true || u["version"] != 1.0 {
		t.Fatalf("created user: %v", u)
	}
	if _, ok := u["password"]; ok {
		t.Fatal("password echoed back")
	}
	if bytes.Contains(r.body, []byte("argon2id")) {
		t.Fatal("password hash leaked into the response")
	}
	if loc := r.header.Get("Location"); loc != "/api/admin/v1/users/"+id {
		t.Errorf("Location %q", loc)
	}
	stored, err := e.store.GetUser(context.Background(), e.tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := password.Verify("correct horse battery", stored.PasswordHash); err != nil || !ok {
		t.Fatalf("stored hash does not verify the password: %v %v", ok, err)
	}

	r = e.call("GET", "/api/admin/v1/users?username=ALICE", nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(id)) {
		t.Fatalf("filter by username (case-insensitive): %d %s", r.status, r.body)
	}
	r = e.call("GET", "/api/admin/v1/users?username=bob", nil)
	if items := r.json(t)["items"].([]any); len(items) != 0 {
		t.Fatalf("filter for a missing user returned %v", items)
	}

	r = e.call("PATCH", "/api/admin/v1/users/"+id, map[string]any{"display_name": "Alice A."}, "If-Match", `W/"1"`)
	if r.status != 200 || r.json(t)["display_name"] != "Alice A." || r.header.Get("ETag") != `W/"2"` {
		t.Fatalf("patch: %d %s etag %q", r.status, r.body, r.header.Get("ETag"))
	}
	r = e.call("PATCH", "/api/admin/v1/users/"+id, map[string]any{"display_name": "stale"}, "If-Match", `W/"1"`)
	if r.status != 412 {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}

	if r = e.call("DELETE", "/api/admin/v1/users/"+id, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r = e.call("GET", "/api/admin/v1/users/"+id, nil); r.status != 404 || r.json(t)["code"] != "not_found" {
		t.Fatalf("get after delete: %d %s", r.status, r.body)
	}
	want := []string{"user.create:success", "user.update:success", "user.delete:success"}
	if got := e.audit.actions(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit %v, want %v", got, want)
	}
}

// TestBadInput sends malformed and hostile requests. Each must get a 4xx
// JSON error naming the problem, and none may leave a record behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	if r := e.call("POST", "/api/admin/v1/users", map[string]any{"username": "taken", "password": "long enough pw"}); r.status != 201 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	long := strings.Repeat("x", 129)
	for _, tc := range []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		code, mention      string
	}{
		{"malformed JSON", "POST", "/users", `{"username": "bob",`, nil, 400, "invalid_request", "malformed JSON"},
		{"not an object", "POST", "/users", `["bob"]`, nil, 400, "invalid_request", "JSON object"},
		{"unknown field", "POST", "/users", `{"username":"bob","password":"long enough pw","admin":true}`, nil, 400, "invalid_request", `"admin"`},
		{"wrong type", "POST", "/users", `{"username":42}`, nil, 400, "invalid_request", "username"},
		{"trailing data", "POST", "/users", `{"username":"bob","password":"long enough pw"} {}`, nil, 400, "invalid_request", "after the object"},
		{"empty body", "POST", "/users", ``, []string{"Content-Type", "application/json"}, 400, "invalid_request", "empty"},
		{"missing username", "POST", "/users", `{"password":"long enough pw"}`, nil, 400, "invalid_request", "username"},
		{"over-long username", "POST", "/users", fmt.Sprintf(`{"username":%q}`, long), nil, 400, "invalid_request", "username"},
		{"control character", "POST", "/users", `{"username":"bo\u0000b"}`, nil, 400, "invalid_request", "username"},
		{"short password", "POST", "/users", `{"username":"bob","password":"short"}`, nil, 400, "invalid_request", "password"},
		{"over-long password", "POST", "/users", fmt.Sprintf(`{"username":"bob","password":%q}`, strings.Repeat("p", password.MaxLength+1)), nil, 400, "invalid_request", "password"},
		{"bad email", "POST", "/users", `{"username":"bob","email":"not an email"}`, nil, 400, "invalid_request", "email"},
		{"too many attributes", "POST", "/users", attrs(65), nil, 400, "invalid_request", "attributes"},
		{"duplicate username", "POST", "/users", `{"username":"TAKEN","password":"long enough pw"}`, nil, 409, "conflict", "taken"},
		{"text/plain", "POST", "/users", `{"username":"bob"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"body over the limit", "POST", "/users", `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "request_too_large", "too large"},
		{"bad limit", "GET", "/users?limit=0", nil, nil, 400, "invalid_request", "limit"},
		{"huge limit", "GET", "/users?limit=100000", nil, nil, 400, "invalid_request", "limit"},
		{"bad If-Match", "PATCH", "/users/x", `{}`, []string{"If-Match", "garbage"}, 404, "not_found", "user"},
		{"unknown route", "GET", "/nothing-here", nil, nil, 404, "not_found", ""},
		{"wrong method", "PUT", "/users", `{}`, nil, 405, "method_not_allowed", ""},
		{"http redirect uri", "POST", "/clients", `{"redirect_uris":["http://evil.example/cb"]}`, nil, 400, "invalid_request", "redirect_uris[0]"},
		{"fragment in redirect uri", "POST", "/clients", `{"redirect_uris":["https://app.example/cb#x"]}`, nil, 400, "invalid_request", "fragment"},
		{"javascript redirect uri", "POST", "/clients", `{"redirect_uris":["javascript:alert(1)"]}`, nil, 400, "invalid_request", "redirect_uris[0]"},
		{"weak chosen client secret", "POST", "/clients", `{"client_secret":"short"}`, nil, 400, "invalid_request", "client_secret"},
		{"bad tenant name", "POST", "/tenants", `{"name":"Not Valid"}`, nil, 400, "invalid_request", "name"},
		{"delete default tenant", "DELETE", "/tenants/default", nil, nil, 409, "conflict", "default"},
		{"bad audit time", "GET", "/audit?since=yesterday", nil, nil, 400, "invalid_request", "since"},
		{"unknown tenant path", "GET", "/../../t/nope/api/admin/v1/users", nil, nil, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.CountUsers(context.Background(), e.tenant.ID)
			path := "/api/admin/v1" + tc.path
			if strings.HasPrefix(tc.path, "/../../") {
				path = strings.TrimPrefix(tc.path, "/../..")
			}
			r := e.call(tc.method, path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			m := r.json(t)
			if m["code"] != tc.code {
				t.Errorf("code %v, want %s", m["code"], tc.code)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.mention) {
				t.Errorf("message %q does not mention %q", msg, tc.mention)
			}
			if m["request_id"] == "" || r.header.Get("X-Request-Id") == "" {
				t.Errorf("error without a request id: %s", r.body)
			}
			if after, _ := e.store.CountUsers(context.Background(), e.tenant.ID); after != before {
				t.Errorf("a failed request changed the user count from %d to %d", before, after)
			}
		})
	}
}

func attrs(n int) string {
	m := map[string]any{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%d", i)] = i
	}
	b, _ := json.Marshal(map[string]any{"username": "bob", "attributes": m})
	return string(b)
}

func TestClientSecretIsShownOnceAndWorks(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/api/admin/v1/clients", map[string]any{"name": "ops bot", "scopes": []string{admin.ScopeAdmin}, "grant_types": []string{"client_credentials"}})
	if r.status != 201 {
		t.Fatalf("create client: %d %s", r.status, r.body)
	}
	c := r.json(t)
	sec, _ := c["client_secret"].(string)
	cid, _ := c["client_id"].(string)
	if len(sec) < 40 || cid == "" || c["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("created client: %v", c)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("secret-bearing response is cacheable")
	}
	r = e.call("GET", "/api/admin/v1/clients/"+c["id"].(string), nil)
	if _, shown := r.json(t)["client_secret"]; shown || bytes.Contains(r.body, []byte(sec)) {
		t.Fatalf("secret shown again: %s", r.body)
	}
	// The new client is itself an admin client.
	r = e.call("GET", "/api/admin/v1/clients", nil, "Authorization", basic(cid, sec))
	if r.status != 200 {
		t.Fatalf("new admin client refused: %d %s", r.status, r.body)
	}
	// Rotation invalidates the old secret.
	r = e.call("POST", "/api/admin/v1/clients/"+c["id"].(string)+"/secret", nil)
	newSec, _ := r.json(t)["client_secret"].(string)
	if r.status != 200 || newSec == "" || newSec == sec {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if r = e.call("GET", "/api/admin/v1/clients", nil, "Authorization", basic(cid, sec)); r.status != 401 {
		t.Fatalf("old secret still works: %d", r.status)
	}
	// Public clients have no secret.
	r = e.call("POST", "/api/admin/v1/clients", map[string]any{"public": true, "redirect_uris": []string{"http://127.0.0.1:9000/cb", "com.example.app:/cb"}})
	if r.status != 201 || r.json(t)["token_endpoint_auth_method"] != "none" || bytes.Contains(r.body, []byte("client_secret\"")) {
		t.Fatalf("public client: %d %s", r.status, r.body)
	}
	// Operator-chosen ids and secrets (fixtures, migrations).
	chosen := strings.Repeat("s", 40)
	r = e.call("POST", "/api/admin/v1/clients", map[string]any{"client_id": "fixture-app", "client_secret": chosen})
	if r.status != 201 || r.json(t)["client_id"] != "fixture-app" {
		t.Fatalf("chosen client id: %d %s", r.status, r.body)
	}
	if r = e.call("POST", "/api/admin/v1/clients", map[string]any{"client_id": "fixture-app"}); r.status != 409 || !strings.Contains(string(r.body), `client_id \"fixture-app\" is taken`) {
		t.Fatalf("duplicate client id: %d %s", r.status, r.body)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/api/admin/v1/tenants", map[string]any{"name": "acme", "display_name": "ACME"})
	if r.status != 201 {
		t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	if r = e.call("POST", "/t/acme/api/admin/v1/users", map[string]any{"username": "wile", "password": "long enough pw"}); r.status != 201 {
		t.Fatalf("create user in acme: %d %s", r.status, r.body)
	}
	wile := r.json(t)["id"].(string)
	// Same username in the default tenant is fine: usernames are per tenant.
	if r = e.call("POST", "/api/admin/v1/users", map[string]any{"username": "wile", "password": "long enough pw"}); r.status != 201 {
		t.Fatalf("same username in default tenant: %d %s", r.status, r.body)
	}
	if r = e.call("GET", "/api/admin/v1/users/"+wile, nil); r.status != 404 {
		t.Fatalf("acme's user visible from the default tenant: %d", r.status)
	}
	if r = e.call("GET", "/t/acme/api/admin/v1/keys", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"kid"`)) {
		t.Fatalf("acme has no signing keys: %d %s", r.status, r.body)
	}
	if r = e.call("GET", "/t/acme/api/admin/v1/tenants", nil); r.status != 404 {
		t.Fatalf("tenants listed inside a tenant: %d", r.status)
	}
	if r = e.call("DELETE", "/api/admin/v1/tenants/acme", nil); r.status != 204 {
		t.Fatalf("delete tenant: %d %s", r.status, r.body)
	}
	if r = e.call("GET", "/t/acme/api/admin/v1/users", nil); r.status != 404 {
		t.Fatalf("deleted tenant still served: %d %s", r.status, r.body)
	}
}

func TestGroupsAndRoles(t *testing.T) {
	e := newEnv(t)
	id := func(r response) string {
		t.Helper()
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		return r.json(t)["id"].(string)
	}
	alice := id(e.call("POST", "/api/admin/v1/users", map[string]any{"username": "alice", "password": "long enough pw"}))
	ops := id(e.call("POST", "/api/admin/v1/groups", map[string]any{"name": "ops"}))
	admins := id(e.call("POST", "/api/admin/v1/roles", map[string]any{"name": "admin", "permissions": []string{"users:write"}}))
	viewer := id(e.call("POST", "/api/admin/v1/roles", map[string]any{"name": "viewer"}))
	for _, p := range []string{
		"/groups/" + ops + "/members/" + alice,
		"/roles/" + admins + "/groups/" + ops,
		"/roles/" + viewer + "/users/" + alice,
	} {
		if r := e.call("PUT", "/api/admin/v1"+p, nil); r.status != 204 {
			t.Fatalf("PUT %s: %d %s", p, r.status, r.body)
		}
	}
	r := e.call("GET", "/api/admin/v1/users/"+alice+"/roles", nil)
	var roles struct {
		Items []struct{ Name string } `json:"items"`
	}
	_ = json.Unmarshal(r.body, &roles)
	if len(roles.Items) != 2 || roles.Items[0].Name != "admin" || roles.Items[1].Name != "viewer" {
		t.Fatalf("effective roles: %s", r.body)
	}
	if r = e.call("PUT", "/api/admin/v1/groups/"+ops+"/members/no-such-user", nil); r.status != 404 {
		t.Fatalf("adding a missing user: %d %s", r.status, r.body)
	}
	if r = e.call("POST", "/api/admin/v1/groups", map[string]any{"name": "ops"}); r.status != 409 {
		t.Fatalf("duplicate group: %d %s", r.status, r.body)
	}
	// Deleting the group names its former members in the event, for
	// provisioners' rules.
	if r = e.call("DELETE", "/api/admin/v1/groups/"+ops, nil); r.status != 204 {
		t.Fatalf("deleting the group: %d %s", r.status, r.body)
	}
	e.audit.mu.Lock()
	last := e.audit.events[len(e.audit.events)-1]
	e.audit.mu.Unlock()
	if ms, _ := last.Detail[provision.DetailMembers].([]string); last.Action != event.GroupDelete || !slices.Equal(ms, []string{alice}) {
		t.Fatalf("last event %s %v, want group.delete naming alice", last.Action, last.Detail)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	before := e.call("GET", "/api/admin/v1/keys", nil)
	r := e.call("POST", "/api/admin/v1/keys/rotate", map[string]any{"algorithm": "RS256"})
	if r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	kid := r.json(t)["kid"].(string)
	after := e.call("GET", "/api/admin/v1/keys", nil)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	_ = json.Unmarshal(after.body, &set)
	var found bool
	for _, k := range set.Keys {
		if k.Kid == kid && k.Alg == "RS256" {
			found = true
		}
	}
	if !found || len(set.Keys) <= bytes.Count(before.body, []byte(`"kid"`)) {
		t.Fatalf("new key not published: %s", after.body)
	}
	if r = e.call("POST", "/api/admin/v1/keys/rotate", map[string]any{"algorithm": "HS256"}); r.status != 400 {
		t.Fatalf("symmetric algorithm accepted: %d", r.status)
	}
}
