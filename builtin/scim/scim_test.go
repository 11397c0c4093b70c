package scim_test

// This suite drives the SCIM service as an outside client would: raw HTTP
// with JSON objects decoded into maps, never the package's own types. It
// runs over a real SQLite store, and over PostgreSQL as well when
// LATCH_TEST_POSTGRES_DSN is set.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/scim"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/postgres"
	"github.com/latchid/latch/kernel/store/sqlite"
)

const customExt = "urn:example:params:scim:schemas:extension:acme:2.0:User"

// tokens is a hand-written BearerTokens: each token names its scopes.
type tokens struct{}

var errStoreDown = errors.New("store down")

func (tokens) ValidateSCIMToken(_ context.Context, _ store.Tenant, raw string) (scim.Principal, error) {
	switch raw {
	case "admin-token":
		return scim.Principal{ClientID: "latch-admin", Subject: "latch-admin", Scopes: []string{scim.ScopeAdmin}}, nil
	case "read-token":
		return scim.Principal{ClientID: "reader", Subject: "reader", Scopes: []string{scim.ScopeRead}}, nil
	case "write-token":
		return scim.Principal{ClientID: "writer", Subject: "writer", Scopes: []string{scim.ScopeWrite}}, nil
	case "openid-token":
		return scim.Principal{ClientID: "app", Subject: "app", Scopes: []string{"openid"}}, nil
	case "down-token":
		return scim.Principal{}, errStoreDown
	}
	if id, ok := strings.CutPrefix(raw, "user:"); ok {
		return scim.Principal{ClientID: "portal", Subject: id, User: true, Scopes: []string{scim.ScopeRead, scim.ScopeWrite}}, nil
	}
	if id, ok := strings.CutPrefix(raw, "userread:"); ok {
		return scim.Principal{ClientID: "portal", Subject: id, User: true, Scopes: []string{scim.ScopeRead}}, nil
	}
	return scim.Principal{}, scim.ErrInvalidBearer
}

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

func (r *auditRecorder) has(action string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if string(e.Action) == action && e.Detail["via"] == "scim" {
			return true
		}
	}
	return false
}

// detail returns the detail of the last SCIM event of the action.
func (r *auditRecorder) detail(t testing.TB, action string) map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if e := r.events[i]; string(e.Action) == action && e.Detail["via"] == "scim" {
			return e.Detail
		}
	}
	t.Fatalf("no %s event", action)
	return nil
}

type env struct {
	t      testing.TB
	url    string // the SCIM root of the tenant under test
	root   string // the server root
	store  store.Store
	tenant store.Tenant
	audit  *auditRecorder
}

// backends lists the stores to run the suite on.
func backends(t *testing.T) map[string]func(testing.TB) store.Store {
	out := map[string]func(testing.TB) store.Store{"sqlite": openSQLite}
	if os.Getenv("LATCH_TEST_POSTGRES_DSN") != "" {
		out["postgres"] = openPostgres
	} else {
		t.Log("LATCH_TEST_POSTGRES_DSN is not set: running on SQLite only")
	}
	return out
}

func openSQLite(t testing.TB) store.Store {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func openPostgres(t testing.TB) store.Store {
	ctx := context.Background()
	st, err := postgres.Open(ctx, os.Getenv("LATCH_TEST_POSTGRES_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "scim-" + hex.EncodeToString(b)
}

// newEnv serves SCIM over st on a loopback port, for a fresh tenant (so
// runs on a shared PostgreSQL database do not meet).
func newEnv(t testing.TB, open func(testing.TB) store.Store) *env {
	t.Helper()
	ctx := context.Background()
	st := open(t)
	if _, err := st.GetTenantByName(ctx, store.DefaultTenantName); errors.Is(err, store.ErrNotFound) {
		if _, err := st.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: randomName(), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DeleteTenant(context.Background(), tn.ID) })
	log := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{BodyLimit: 1 << 20, ShutdownTimeout: 1}, log, prometheus.NewRegistry(), st.Ping)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := scim.ParseExtension([]byte(`{"id":"` + customExt + `","name":"Acme","attributes":[
		{"name":"level","type":"integer"},
		{"name":"badge","type":"string","caseExact":true},
		{"name":"tags","type":"string","multiValued":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &auditRecorder{}
	scim.New(scim.Deps{
		Store: st, Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}),
		Bearer: tokens{}, Audit: rec, Log: log, UserExtensions: []*scim.Schema{ext},
	}).Mount(srv.App())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = srv.App().Shutdown() })
	root := "http://" + ln.Addr().String()
	return &env{t: t, url: root + "/t/" + tn.Name + "/scim2", root: root, store: st, tenant: tn, audit: rec}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request with the admin token unless hdr sets Authorization.
func (e *env) do(method, path string, body any, hdr ...string) resp {
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
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.url + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Authorization", "Bearer admin-token")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

// expectError checks a response is a SCIM error with the status and type.
func expectError(t testing.TB, r resp, status int, scimType string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	m := r.obj(t)
	schemas, _ := m["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("not a SCIM error: %s", r.body)
	}
	if m["status"] != fmt.Sprint(status) {
		t.Fatalf("error status %v, want %q", m["status"], fmt.Sprint(status))
	}
	if got, _ := m["scimType"].(string); got != scimType {
		t.Fatalf("scimType %q, want %q: %s", got, scimType, r.body)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/scim+json") {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
}

func (e *env) createUser(body map[string]any) map[string]any {
	e.t.Helper()
	if body["schemas"] == nil {
		body["schemas"] = []any{"urn:ietf:params:scim:schemas:core:2.0:User"}
	}
	r := e.do("POST", "/Users", body)
	if r.status != 201 {
		e.t.Fatalf("creating user: %d %s", r.status, r.body)
	}
	return r.obj(e.t)
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

// forEachBackend runs f on every store backend.
func forEachBackend(t *testing.T, f func(t *testing.T, e *env)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { f(t, newEnv(t, open)) })
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, openSQLite)
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		challenge                string
	}{
		{"no token", "GET", "/Users", "", 401, `Bearer realm="latch-scim"`},
		{"basic credentials", "GET", "/Users", "Basic YTpi", 401, `Bearer realm="latch-scim"`},
		{"invalid token", "GET", "/Users", "Bearer nope", 401, `error="invalid_token"`},
		{"read scope reads", "GET", "/Users", "Bearer read-token", 200, ""},
		{"write scope reads", "GET", "/Users", "Bearer write-token", 200, ""},
		{"read scope cannot write", "POST", "/Users", "Bearer read-token", 403, `error="insufficient_scope"`},
		{"read scope cannot bulk", "POST", "/Bulk", "Bearer read-token", 403, `error="insufficient_scope"`},
		{"read scope may search", "POST", "/Users/.search", "Bearer read-token", 400, ""},
		{"unrelated scope", "GET", "/ServiceProviderConfig", "Bearer openid-token", 403, `error="insufficient_scope"`},
		{"token check unavailable", "GET", "/Users", "Bearer down-token", 503, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, nil, "Authorization", tc.auth)
			if tc.status == 200 {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				return
			}
			typ := ""
			if tc.status == 400 {
				typ = "invalidSyntax"
			}
			expectError(t, r, tc.status, typ)
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want it to contain %q", got, tc.challenge)
			}
		})
	}
	if !e.audit.has("scim.auth") {
		t.Fatal("a refused scope was not audited")
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, openSQLite)
	spc := e.do("GET", "/ServiceProviderConfig", nil).obj(t)
	for _, k := range []string{"patch", "bulk", "filter", "changePassword", "sort", "etag"} {
		if m, _ := spc[k].(map[string]any); m["supported"] != true {
			t.Fatalf("%s not supported: %v", k, spc[k])
		}
	}
	if b, _ := spc["bulk"].(map[string]any); b["maxOperations"] != float64(scim.MaxBulkOperations) {
		t.Fatalf("bulk: %v", b)
	}
	schemes, _ := spc["authenticationSchemes"].([]any)
	if len(schemes) != 1 || str(schemes[0].(map[string]any), "type") != "oauthbearertoken" {
		t.Fatalf("authenticationSchemes: %v", schemes)
	}
	rts := e.do("GET", "/ResourceTypes", nil).obj(t)
	if rts["totalResults"] != float64(2) {
		t.Fatalf("resource types: %v", rts)
	}
	user := e.do("GET", "/ResourceTypes/User", nil).obj(t)
	exts, _ := user["schemaExtensions"].([]any)
	if len(exts) != 2 || str(exts[0].(map[string]any), "schema") != "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" ||
		str(exts[1].(map[string]any), "schema") != customExt {
		t.Fatalf("User extensions: %v", exts)
	}
	schemas := e.do("GET", "/Schemas", nil).obj(t)
	if schemas["totalResults"] != float64(4) {
		t.Fatalf("schemas: %v", schemas["totalResults"])
	}
	s := e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", nil)
	if s.status != 200 || str(s.obj(t), "name") != "Group" {
		t.Fatalf("Group schema: %d %s", s.status, s.body)
	}
	expectError(t, e.do("GET", "/Schemas/urn:nope:x", nil), 404, "")
	expectError(t, e.do("GET", "/ResourceTypes/Nope", nil), 404, "")
	expectError(t, e.do("GET", "/Schemas?filter="+url.QueryEscape(`id pr`), nil), 403, "")
	expectError(t, e.do("GET", "/Nothing", nil), 404, "")
	expectError(t, e.do("GET", e.root+"/t/no-such-tenant/scim2/Users", nil), 404, "")
	expectError(t, e.do("GET", e.root+"/t/BAD_NAME/scim2/Users", nil), 404, "")
}

func TestMe(t *testing.T) {
	e := newEnv(t, openSQLite)
	// A client credentials token names no user.
	expectError(t, e.do("GET", "/Me", nil), 501, "")
	expectError(t, e.do("GET", e.root+"/scim2/Me", nil), 501, "")

	ids := seed(e)
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	r := e.do("GET", "/Me", nil, as("user:"+ids["carol"])...)
	if r.status != 200 || r.obj(t)["userName"] != "carol" || r.header.Get("ETag") != `W/"1"` {
		t.Fatalf("GET /Me: %d %s", r.status, r.body)
	}
	r = e.do("PATCH", "/Me", patchBody(op("replace", "displayName", "Caroline")), as("user:"+ids["carol"])...)
	if r.status != 200 || r.obj(t)["displayName"] != "Caroline" {
		t.Fatalf("PATCH /Me: %d %s", r.status, r.body)
	}
	expectError(t, e.do("PATCH", "/Me", patchBody(op("replace", "displayName", "X")), as("userread:"+ids["carol"])...), 403, "")
	expectError(t, e.do("GET", "/Me/extra", nil, as("user:"+ids["carol"])...), 404, "")
	// A user's token reaches only /Me (and discovery), whatever its scopes.
	expectError(t, e.do("GET", "/Users/"+ids["alice"], nil, as("user:"+ids["carol"])...), 403, "")
	expectError(t, e.do("POST", "/Bulk", map[string]any{}, as("user:"+ids["carol"])...), 403, "")
	if r := e.do("GET", "/Schemas", nil, as("user:"+ids["carol"])...); r.status != 200 {
		t.Fatalf("discovery with a user token: %d", r.status)
	}
	expectError(t, e.do("POST", "/Me", map[string]any{}, as("user:"+ids["carol"])...), 405, "")
	expectError(t, e.do("GET", "/Me", nil, as("user:no-such-user")...), 404, "")
	if r := e.do("DELETE", "/Me", nil, as("user:"+ids["carol"])...); r.status != 204 {
		t.Fatalf("DELETE /Me: %d", r.status)
	}
	expectError(t, e.do("GET", "/Users/"+ids["carol"], nil), 404, "")
}

func TestUserLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		created := e.createUser(map[string]any{
			"schemas":    []any{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"UserName":   "bjensen", // attribute names are case-insensitive
			"externalId": "ext-1",
			"name":       map[string]any{"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
			"emails": []any{
				map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true},
				map[string]any{"value": "babs@home.example", "type": "home"},
			},
			"phoneNumbers": []any{map[string]any{"value": "+1 555 0100", "type": "work"}},
			"password":     "correct horse battery staple",
			"title":        "Tour Guide",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{
				"employeeNumber": "701984", "manager": map[string]any{"value": "boss-1"},
			},
			"id":   "client-chosen-id-is-ignored",
			"meta": map[string]any{"version": "W/\"99\""},
		})
		id := str(created, "id")
		if id == "" || id == "client-chosen-id-is-ignored" || str(created, "userName") != "bjensen" {
			t.Fatalf("created: %v", created)
		}
		if _, ok := created["password"]; ok {
			t.Fatal("the password was returned")
		}
		if str(created, "meta", "version") != `W/"1"` || str(created, "meta", "resourceType") != "User" {
			t.Fatalf("meta: %v", created["meta"])
		}
		u, err := e.store.GetUser(ctx, e.tenant.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") || u.Email != "bjensen@example.com" || u.GivenName != "Barbara" || !u.Enabled {
			t.Fatalf("stored user: %+v", u)
		}
		if !e.audit.has("user.create") {
			t.Fatal("no user.create audit event")
		}

		got := e.do("GET", "/Users/"+id, nil)
		if got.status != 200 || got.header.Get("ETag") != `W/"1"` || got.header.Get("Location") != e.url+"/Users/"+id {
			t.Fatalf("get: %d %v %s", got.status, got.header, got.body)
		}
		gm := got.obj(t)
		if str(gm, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber") != "701984" || str(gm, "name", "middleName") != "J" {
			t.Fatalf("get body: %s", got.body)
		}
		if r := e.do("GET", "/Users/"+id, nil, "If-None-Match", `W/"1"`); r.status != 304 {
			t.Fatalf("If-None-Match: %d", r.status)
		}

		// Duplicate userName, compared case-insensitively.
		expectError(t, e.do("POST", "/Users", map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "BJensen"}), 409, "uniqueness")

		// PUT with a stale version, then with the current one.
		put := map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "bjensen2", "active": false,
			"emails": []any{map[string]any{"value": "new@example.com", "primary": true}}}
		expectError(t, e.do("PUT", "/Users/"+id, put, "If-Match", `W/"7"`), 412, "")
		r := e.do("PUT", "/Users/"+id, put, "If-Match", `W/"1"`)
		if r.status != 200 || r.header.Get("ETag") != `W/"2"` {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
		pm := r.obj(t)
		if pm["active"] != false || str(pm, "userName") != "bjensen2" || pm["name"] != nil || pm["title"] != nil ||
			pm["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] != nil {
			t.Fatalf("put replaced badly: %s", r.body)
		}
		u, _ = e.store.GetUser(ctx, e.tenant.ID, id)
		if u.PasswordHash == "" || u.Email != "new@example.com" || u.Enabled {
			t.Fatalf("after put: %+v", u)
		}

		expectError(t, e.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"1"`), 412, "")
		if r := e.do("DELETE", "/Users/"+id, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		expectError(t, e.do("GET", "/Users/"+id, nil), 404, "")
		expectError(t, e.do("DELETE", "/Users/"+id, nil), 404, "")
		expectError(t, e.do("PUT", "/Users/"+id, put), 404, "")
	})
}

func TestUserInputErrors(t *testing.T) {
	e := newEnv(t, openSQLite)
	core := []any{"urn:ietf:params:scim:schemas:core:2.0:User"}
	for _, tc := range []struct {
		name     string
		body     any
		ctype    string
		status   int
		scimType string
	}{
		{"malformed JSON", `{"userName":`, "", 400, "invalidSyntax"},
		{"trailing data", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"} {}`, "", 400, "invalidSyntax"},
		{"array body", `[]`, "", 400, "invalidSyntax"},
		{"empty body", ``, "", 400, "invalidSyntax"},
		{"wrong content type", `{}`, "text/plain", 415, ""},
		{"no schemas", map[string]any{"userName": "a"}, "", 400, "invalidSyntax"},
		{"wrong schema", map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "userName": "a"}, "", 400, "invalidValue"},
		{"missing userName", map[string]any{"schemas": core}, "", 400, "invalidValue"},
		{"unknown attribute", map[string]any{"schemas": core, "userName": "a", "shoeSize": 42}, "", 400, "invalidValue"},
		{"wrong type", map[string]any{"schemas": core, "userName": 5}, "", 400, "invalidValue"},
		{"emails not a list", map[string]any{"schemas": core, "userName": "a", "emails": "a@b"}, "", 400, "invalidSyntax"},
		{"two primaries", map[string]any{"schemas": core, "userName": "a", "emails": []any{
			map[string]any{"value": "a@b.c", "primary": true}, map[string]any{"value": "d@b.c", "primary": true}}}, "", 400, "invalidValue"},
		{"short password", map[string]any{"schemas": core, "userName": "a", "password": "short"}, "", 400, "invalidValue"},
		{"over-long userName", map[string]any{"schemas": core, "userName": strings.Repeat("u", 300)}, "", 400, "invalidValue"},
		{"over-long attribute", map[string]any{"schemas": core, "userName": "a", "title": strings.Repeat("t", 5000)}, "", 400, "invalidValue"},
		{"control characters", map[string]any{"schemas": core, "userName": "a\u0000b"}, "", 400, "invalidValue"},
		{"not an email", map[string]any{"schemas": core, "userName": "a", "emails": []any{map[string]any{"value": "nope"}}}, "", 400, "invalidValue"},
		{"extension not object", map[string]any{"schemas": core, "userName": "a", customExt: "x"}, "", 400, "invalidSyntax"},
		{"extension wrong type", map[string]any{"schemas": core, "userName": "a", customExt: map[string]any{"level": "high"}}, "", 400, "invalidValue"},
		{"body over the limit", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + strings.Repeat("a", scim.MaxBodyBytes) + `"}`, "", 413, "tooMany"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ctype != "" {
				hdr = []string{"Content-Type", tc.ctype}
			}
			expectError(t, e.do("POST", "/Users", tc.body, hdr...), tc.status, tc.scimType)
		})
	}
	if r := e.do("GET", "/Users", nil); r.obj(t)["totalResults"] != float64(0) {
		t.Fatalf("a refused request left a user behind: %s", r.body)
	}
}

// seed creates the users the filter tests query.
func seed(e *env) map[string]string {
	ids := map[string]string{}
	for _, u := range []map[string]any{
		{"userName": "alice", "displayName": "Alice Liddell", "externalId": "A-1", "title": "Engineer", "active": true,
			"emails":  []any{map[string]any{"value": "alice@work.example", "type": "work", "primary": true}, map[string]any{"value": "alice@home.example", "type": "home"}},
			customExt: map[string]any{"level": 3, "badge": "Gold", "tags": []any{"x", "y"}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "R&D", "manager": map[string]any{"value": "m-1"}}},
		{"userName": "bob", "displayName": "Bob Builder", "externalId": "a-1", "title": "Manager", "active": true,
			"emails":  []any{map[string]any{"value": "bob@home.example", "type": "home"}},
			customExt: map[string]any{"level": 7, "badge": "gold"}},
		{"userName": "carol", "displayName": "Carol", "active": false, "userType": "Intern",
			"emails":  []any{map[string]any{"value": "carol@work.example", "type": "work"}},
			customExt: map[string]any{"level": 5}},
		{"userName": "dave", "nickName": "D", "active": true, "userType": "Employee",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Sales"}},
	} {
		r := e.createUser(u)
		ids[str(u, "userName")] = str(r, "id")
	}
	return ids
}

func names(t testing.TB, r resp) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.obj(t)
	schemas, _ := m["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
		t.Fatalf("not a ListResponse: %s", r.body)
	}
	res, _ := m["Resources"].([]any)
	out := []string{}
	for _, x := range res {
		xm, _ := x.(map[string]any)
		n := str(xm, "userName")
		if n == "" {
			n = str(xm, "displayName")
		}
		out = append(out, n)
	}
	return out
}

func TestFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		seed(e)
		ent := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
		for _, tc := range []struct {
			filter string
			want   []string
		}{
			{`userName eq "alice"`, []string{"alice"}},
			{`userName eq "ALICE"`, []string{"alice"}}, // userName is not case-exact
			{`userName ne "alice"`, []string{"bob", "carol", "dave"}},
			{`displayName co "li"`, []string{"alice"}},
			{`displayName co "LI"`, []string{"alice"}},
			{`userName sw "c"`, []string{"carol"}},
			{`userName ew "E"`, []string{"alice", "dave"}},
			{`title pr`, []string{"alice", "bob"}},
			{`userName gt "bob"`, []string{"carol", "dave"}},
			{`userName ge "bob"`, []string{"bob", "carol", "dave"}},
			{`userName lt "bob"`, []string{"alice"}},
			{`userName le "bob"`, []string{"alice", "bob"}},
			{`externalId eq "A-1"`, []string{"alice"}}, // externalId is case-exact
			{`externalId eq "a-1"`, []string{"bob"}},
			{`active eq false`, []string{"carol"}},
			{`active ne false`, []string{"alice", "bob", "dave"}},
			{`emails co "home"`, []string{"alice", "bob"}},
			{`emails.value ew "@work.example"`, []string{"alice", "carol"}},
			{`emails.type eq "work" and emails.value sw "c"`, []string{"carol"}},
			{`emails[type eq "work" and value co "alice"]`, []string{"alice"}},
			{`emails[type eq "home"] or userType eq "Intern"`, []string{"alice", "bob", "carol"}},
			{`emails[primary eq true]`, []string{"alice"}},
			{`title pr and userName eq "bob" or userName eq "dave"`, []string{"bob", "dave"}},
			{`title pr and (userName eq "bob" or userName eq "dave")`, []string{"bob"}},
			{`not (title pr)`, []string{"carol", "dave"}},
			{`not (userName eq "alice") and not (userName eq "bob")`, []string{"carol", "dave"}},
			{`name pr`, []string{}},
			{`nickName eq null`, []string{"alice", "bob", "carol"}},
			{`nickName ne null`, []string{"dave"}},
			{ent + `:department eq "Sales"`, []string{"dave"}},
			{ent + `:manager.value eq "m-1"`, []string{"alice"}},
			{customExt + `:level gt 4`, []string{"bob", "carol"}},
			{customExt + `:level le 5`, []string{"alice", "carol"}},
			{customExt + `:level eq 3.0`, []string{"alice"}},
			{customExt + `:badge eq "gold"`, []string{"bob"}}, // badge is case-exact
			{customExt + `:tags eq "y"`, []string{"alice"}},
			{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave"`, []string{"dave"}},
			{`meta.created gt "2000-01-01T00:00:00Z"`, []string{"alice", "bob", "carol", "dave"}},
			{`meta.lastModified lt "2000-01-01T00:00:00Z"`, []string{}},
			{`meta.resourceType eq "User" and userName eq "carol"`, []string{"carol"}},
			{`userName EQ "bob" OR userName Eq "carol"`, []string{"bob", "carol"}},
			// Injection attempts are values, not syntax.
			{`userName eq "alice\" or userName pr or userName eq \""`, []string{}},
			{`userName eq "' OR '1'='1"`, []string{}},
			{`userName co "%"`, []string{}},
			{`userName sw "_"`, []string{}},
		} {
			t.Run(tc.filter, func(t *testing.T) {
				got := names(t, e.do("GET", "/Users?filter="+url.QueryEscape(tc.filter)+"&sortBy=userName", nil))
				if !slices.Equal(got, tc.want) {
					t.Fatalf("filter %s: got %v, want %v", tc.filter, got, tc.want)
				}
			})
		}
	})
}

func TestFilterErrors(t *testing.T) {
	e := newEnv(t, openSQLite)
	seed(e)
	for _, f := range []string{
		`userName eq`,
		`userName eq "x" or "1"="1"`,
		`userName eq "x"; DROP TABLE users;--`,
		`userName eq 'x'`,
		`shoeSize eq 42`,
		`name eq "x"`,
		`active gt true`,
		`active eq "true"`,
		`userName gt 5`,
		`userName eq null or userName gt null`,
		`meta.created gt "yesterday"`,
		`password eq "secret"`,
		`title[value eq "x"]`,
		`emails[nope eq "x"]`,
		`urn:nope:x:y eq "z"`,
		`((((((((((((((((((((((((((((((((((userName pr))))))))))))))))))))))))))))))))))`,
	} {
		name := f
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			expectError(t, e.do("GET", "/Users?filter="+url.QueryEscape(f), nil), 400, "invalidFilter")
		})
	}
	expectError(t, e.do("GET", "/Groups?filter="+url.QueryEscape(`userName eq "x"`), nil), 400, "invalidFilter")
	// Over-long filters travel in a SearchRequest: the HTTP server refuses
	// a request line that long before SCIM sees it.
	for _, f := range []string{
		`userName eq "` + strings.Repeat("x", scim.MaxFilterLength) + `"`,
		strings.Repeat(`userName pr and `, 300) + `userName pr`,
	} {
		expectError(t, e.do("POST", "/Users/.search", map[string]any{
			"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": f}), 400, "invalidFilter")
	}
}

func TestSortAndPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		seed(e)
		for _, tc := range []struct {
			query string
			want  []string
			total float64
		}{
			{"sortBy=userName", []string{"alice", "bob", "carol", "dave"}, 4},
			{"sortBy=userName&sortOrder=descending", []string{"dave", "carol", "bob", "alice"}, 4},
			{"sortBy=title", []string{"alice", "bob", "carol", "dave"}, 4}, // absent last
			{"sortBy=title&sortOrder=descending", []string{"bob", "alice", "carol", "dave"}, 4},
			{"sortBy=emails.value", []string{"alice", "bob", "carol", "dave"}, 4},
			{"sortBy=" + url.QueryEscape(customExt+":level") + "&sortOrder=descending", []string{"bob", "carol", "alice", "dave"}, 4},
			{"sortBy=userName&startIndex=2&count=2", []string{"bob", "carol"}, 4},
			{"sortBy=userName&startIndex=4&count=10", []string{"dave"}, 4},
			{"sortBy=userName&startIndex=9", []string{}, 4},
			{"sortBy=userName&startIndex=0&count=1", []string{"alice"}, 4},
			{"sortBy=userName&count=0", []string{}, 4},
			{"sortBy=userName&count=-5", []string{}, 4},
			{"sortBy=userName&filter=" + url.QueryEscape(`active eq true`) + "&count=2", []string{"alice", "bob"}, 3},
		} {
			t.Run(tc.query, func(t *testing.T) {
				r := e.do("GET", "/Users?"+tc.query, nil)
				got := names(t, r)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				m := r.obj(t)
				if m["totalResults"] != tc.total || m["itemsPerPage"] != float64(len(tc.want)) {
					t.Fatalf("totalResults %v itemsPerPage %v", m["totalResults"], m["itemsPerPage"])
				}
			})
		}
		for _, q := range []string{"sortOrder=sideways", "sortBy=shoeSize", "sortBy=name", "startIndex=x", "count=1.5"} {
			expectError(t, e.do("GET", "/Users?"+q, nil), 400, "invalidValue")
		}
	})
}

func TestAttributeSelection(t *testing.T) {
	e := newEnv(t, openSQLite)
	ids := seed(e)
	r := e.do("GET", "/Users/"+ids["alice"]+"?attributes=userName,emails.value", nil).obj(t)
	if r["id"] != ids["alice"] || r["userName"] != "alice" || r["displayName"] != nil || r["meta"] != nil {
		t.Fatalf("attributes: %v", r)
	}
	emails, _ := r["emails"].([]any)
	if len(emails) != 2 || len(emails[0].(map[string]any)) != 1 {
		t.Fatalf("emails.value only: %v", emails)
	}
	r = e.do("GET", "/Users/"+ids["alice"]+"?excludedAttributes=emails,displayName,id,"+customExt, nil).obj(t)
	if r["emails"] != nil || r["displayName"] != nil || r["id"] != ids["alice"] || r[customExt] != nil || r["userName"] != "alice" {
		t.Fatalf("excludedAttributes: %v", r)
	}
	r = e.do("GET", "/Users/"+ids["alice"]+"?attributes=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", nil).obj(t)
	if str(r, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department") != "R&D" || r["userName"] != nil {
		t.Fatalf("extension attribute: %v", r)
	}
	l := e.do("GET", "/Users?attributes=userName&sortBy=userName&count=1", nil).obj(t)
	res, _ := l["Resources"].([]any)
	if len(res) != 1 || len(res[0].(map[string]any)) != 3 {
		t.Fatalf("list attributes: %v", res)
	}
	expectError(t, e.do("GET", "/Users?attributes=userName&excludedAttributes=title", nil), 400, "invalidValue")
	expectError(t, e.do("GET", "/Users?attributes=shoeSize", nil), 400, "invalidValue")
}

func patchBody(ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, o := range ops {
		l[i] = o
	}
	return map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": l}
}

func op(o, path string, value any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func TestPatchUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ids := seed(e)
		id := ids["alice"]
		ent := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
		for _, tc := range []struct {
			name  string
			ops   []map[string]any
			check func(t *testing.T, u map[string]any)
		}{
			{"replace a sub-attribute", []map[string]any{op("replace", "name.givenName", "Alicia")}, func(t *testing.T, u map[string]any) {
				if str(u, "name", "givenName") != "Alicia" {
					t.Fatal(u["name"])
				}
			}},
			{"add without a path", []map[string]any{op("Add", "", map[string]any{"nickName": "Al", "emails": []any{map[string]any{"value": "al@new.example", "type": "other"}}})}, func(t *testing.T, u map[string]any) {
				if u["nickName"] != "Al" || len(u["emails"].([]any)) != 3 {
					t.Fatal(u)
				}
			}},
			{"replace without a path, string boolean", []map[string]any{op("Replace", "", map[string]any{"active": "False", "title": "CTO"})}, func(t *testing.T, u map[string]any) {
				if u["active"] != false || u["title"] != "CTO" {
					t.Fatal(u)
				}
			}},
			{"replace a filtered sub-attribute", []map[string]any{op("replace", `emails[type eq "home"].value`, "alice@other.example")}, func(t *testing.T, u map[string]any) {
				if !strings.Contains(fmt.Sprint(u["emails"]), "alice@other.example") || strings.Contains(fmt.Sprint(u["emails"]), "alice@home.example") {
					t.Fatal(u["emails"])
				}
			}},
			{"make another value primary", []map[string]any{op("replace", `emails[type eq "other"].primary`, true)}, func(t *testing.T, u map[string]any) {
				primaries := 0
				for _, x := range u["emails"].([]any) {
					if x.(map[string]any)["primary"] == true {
						primaries++
						if x.(map[string]any)["type"] != "other" {
							t.Fatal(u["emails"])
						}
					}
				}
				if primaries != 1 {
					t.Fatal(u["emails"])
				}
			}},
			{"add through a filter creates the value", []map[string]any{op("add", `phoneNumbers[type eq "mobile"].value`, "+1 555 0199")}, func(t *testing.T, u map[string]any) {
				if !strings.Contains(fmt.Sprint(u["phoneNumbers"]), "mobile") {
					t.Fatal(u["phoneNumbers"])
				}
			}},
			{"remove with a filter", []map[string]any{op("remove", `emails[value ew "other.example"]`, nil)}, func(t *testing.T, u map[string]any) {
				if strings.Contains(fmt.Sprint(u["emails"]), "other.example") {
					t.Fatal(u["emails"])
				}
			}},
			{"remove an attribute", []map[string]any{op("remove", "nickName", nil)}, func(t *testing.T, u map[string]any) {
				if u["nickName"] != nil {
					t.Fatal(u)
				}
			}},
			{"extension attribute paths", []map[string]any{
				op("replace", ent+":manager.value", "m-2"),
				op("add", ent+":costCenter", "4130"),
				op("replace", customExt+":level", 9),
			}, func(t *testing.T, u map[string]any) {
				if str(u, ent, "manager", "value") != "m-2" || str(u, ent, "costCenter") != "4130" || u[customExt].(map[string]any)["level"] != float64(9) {
					t.Fatal(u[ent], u[customExt])
				}
			}},
			{"whole extension", []map[string]any{op("remove", ent, nil), op("add", customExt, map[string]any{"badge": "Blue"})}, func(t *testing.T, u map[string]any) {
				if u[ent] != nil || str(u, customExt, "badge") != "Blue" || slices.Contains(u["schemas"].([]any), any(ent)) {
					t.Fatal(u)
				}
			}},
			{"password", []map[string]any{op("replace", "password", "a brand new passphrase")}, func(t *testing.T, u map[string]any) {
				if u["password"] != nil {
					t.Fatal("password returned")
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("PATCH", "/Users/"+id, patchBody(tc.ops...))
				if r.status != 200 {
					t.Fatalf("patch: %d %s", r.status, r.body)
				}
				tc.check(t, r.obj(t))
				// The stored state matches what PATCH answered.
				g := e.do("GET", "/Users/"+id, nil).obj(t)
				delete(g, "meta")
				p := r.obj(t)
				delete(p, "meta")
				if fmt.Sprint(g) != fmt.Sprint(p) {
					t.Fatalf("GET after PATCH differs:\n%v\n%v", g, p)
				}
			})
		}
		cur := e.do("GET", "/Users/"+id, nil)
		etag := cur.header.Get("ETag")
		for _, tc := range []struct {
			name     string
			body     any
			hdr      []string
			status   int
			scimType string
		}{
			{"read-only id", patchBody(op("replace", "id", "x")), nil, 400, "mutability"},
			{"read-only groups", patchBody(op("add", "groups", []any{map[string]any{"value": "g"}})), nil, 400, "mutability"},
			{"remove without path", patchBody(op("remove", "", nil)), nil, 400, "noTarget"},
			{"remove required", patchBody(op("remove", "userName", nil)), nil, 400, "mutability"},
			{"replace with no match", patchBody(op("replace", `emails[value co "nowhere"].type`, "x")), nil, 400, "noTarget"},
			{"bad path", patchBody(op("replace", `emails[type eq`, "x")), nil, 400, "invalidPath"},
			{"unknown path", patchBody(op("replace", `shoeSize`, 1)), nil, 400, "invalidPath"},
			{"filter on a simple attribute", patchBody(op("replace", `title[value eq "x"]`, "y")), nil, 400, "invalidPath"},
			{"bad filter attribute", patchBody(op("replace", `emails[nope eq "x"].value`, "y")), nil, 400, "invalidFilter"},
			{"bad op", patchBody(op("move", "title", "x")), nil, 400, "invalidSyntax"},
			{"add without value", patchBody(op("add", "title", nil)), nil, 400, "invalidSyntax"},
			{"wrong value type", patchBody(op("replace", "active", 3)), nil, 400, "invalidValue"},
			{"no-path value not object", patchBody(op("replace", "", "x")), nil, 400, "invalidSyntax"},
			{"no schemas", map[string]any{"Operations": []any{op("replace", "title", "x")}}, nil, 400, "invalidSyntax"},
			{"no operations", patchBody(), nil, 400, "invalidSyntax"},
			{"too many operations", patchBody(slices.Repeat([]map[string]any{op("replace", "title", "x")}, scim.MaxPatchOperations+1)...), nil, 400, "tooMany"},
			{"stale If-Match", patchBody(op("replace", "title", "x")), []string{"If-Match", `W/"1"`}, 412, ""},
			{"unknown user", patchBody(op("replace", "title", "x")), []string{"X-Path", "missing"}, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := "/Users/" + id
				if len(tc.hdr) == 2 && tc.hdr[0] == "X-Path" {
					path = "/Users/no-such-user"
				}
				expectError(t, e.do("PATCH", path, tc.body, tc.hdr...), tc.status, tc.scimType)
			})
		}
		// A failed PATCH changes nothing (all operations or none).
		expectError(t, e.do("PATCH", "/Users/"+id, patchBody(op("replace", "title", "changed"), op("replace", "id", "x"))), 400, "mutability")
		after := e.do("GET", "/Users/"+id, nil)
		if after.header.Get("ETag") != etag || after.obj(t)["title"] == "changed" {
			t.Fatal("a failed PATCH changed the user")
		}
		if r := e.do("PATCH", "/Users/"+id, patchBody(op("replace", "title", "ok")), "If-Match", etag); r.status != 200 {
			t.Fatalf("PATCH with the current If-Match: %d %s", r.status, r.body)
		}
	})
}

func TestGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ids := seed(e)
		core := []any{"urn:ietf:params:scim:schemas:core:2.0:Group"}
		r := e.do("POST", "/Groups", map[string]any{"schemas": core, "displayName": "Engineering", "externalId": "eng",
			"members": []any{map[string]any{"value": ids["alice"], "display": "ignored"}, map[string]any{"value": ids["bob"], "type": "User"}}})
		if r.status != 201 {
			t.Fatalf("create group: %d %s", r.status, r.body)
		}
		g := r.obj(t)
		gid := str(g, "id")
		if len(g["members"].([]any)) != 2 || r.header.Get("ETag") == "" || str(g, "meta", "resourceType") != "Group" {
			t.Fatalf("group: %s", r.body)
		}
		if !e.audit.has("group.create") || !e.audit.has("group.member.add") {
			t.Fatal("group events not audited")
		}
		// The user shows its group.
		u := e.do("GET", "/Users/"+ids["alice"], nil).obj(t)
		if gs, _ := u["groups"].([]any); len(gs) != 1 || str(gs[0].(map[string]any), "value") != gid || str(gs[0].(map[string]any), "display") != "Engineering" {
			t.Fatalf("user groups: %v", u["groups"])
		}
		if got := names(t, e.do("GET", "/Users?sortBy=userName&filter="+url.QueryEscape(`groups.display eq "Engineering"`), nil)); !slices.Equal(got, []string{"alice", "bob"}) {
			t.Fatalf("users by group: %v", got)
		}
		expectError(t, e.do("POST", "/Groups", map[string]any{"schemas": core, "displayName": "Engineering"}), 409, "uniqueness")
		expectError(t, e.do("POST", "/Groups", map[string]any{"schemas": core}), 400, "invalidValue")
		expectError(t, e.do("POST", "/Groups", map[string]any{"schemas": core, "displayName": "X", "members": []any{map[string]any{"value": "no-such-user"}}}), 400, "invalidValue")
		expectError(t, e.do("POST", "/Groups", map[string]any{"schemas": core, "displayName": "X", "members": []any{map[string]any{"value": gid, "type": "Group"}}}), 400, "invalidValue")

		etag := e.do("GET", "/Groups/"+gid, nil).header.Get("ETag")
		p := e.do("PATCH", "/Groups/"+gid, patchBody(
			op("add", "members", []any{map[string]any{"value": ids["carol"]}}),
			op("remove", `members[value eq "`+ids["alice"]+`"]`, nil),
			op("replace", "displayName", "Eng"),
		), "If-Match", etag)
		if p.status != 200 {
			t.Fatalf("patch group: %d %s", p.status, p.body)
		}
		if p.header.Get("ETag") == etag {
			t.Fatal("the group's ETag did not change")
		}
		expectError(t, e.do("PATCH", "/Groups/"+gid, patchBody(op("replace", "displayName", "Again")), "If-Match", etag), 412, "")
		// The member-removal form some clients use.
		if r := e.do("PATCH", "/Groups/"+gid, patchBody(op("remove", "members", []any{map[string]any{"value": ids["bob"]}}))); r.status != 200 {
			t.Fatalf("remove members by value: %d %s", r.status, r.body)
		}
		got := e.do("GET", "/Groups/"+gid, nil).obj(t)
		ms, _ := got["members"].([]any)
		if len(ms) != 1 || str(ms[0].(map[string]any), "value") != ids["carol"] || got["displayName"] != "Eng" {
			t.Fatalf("after patch: %v", got)
		}
		for _, tc := range []struct {
			filter string
			want   []string
		}{
			{`displayName eq "eng"`, []string{"Eng"}},
			{`members.value eq "` + ids["carol"] + `"`, []string{"Eng"}},
			{`members[display eq "carol"]`, []string{"Eng"}},
			{`externalId eq "ENG"`, []string{}},
			{`members pr`, []string{"Eng"}},
		} {
			if got := names(t, e.do("GET", "/Groups?filter="+url.QueryEscape(tc.filter), nil)); !slices.Equal(got, tc.want) {
				t.Fatalf("groups %s: %v, want %v", tc.filter, got, tc.want)
			}
		}
		// PUT replaces the members.
		put := e.do("PUT", "/Groups/"+gid, map[string]any{"schemas": core, "displayName": "Engineering", "members": []any{map[string]any{"value": ids["dave"]}}})
		if put.status != 200 || len(put.obj(t)["members"].([]any)) != 1 {
			t.Fatalf("put group: %d %s", put.status, put.body)
		}
		if r := e.do("GET", "/Groups?attributes=displayName", nil).obj(t); r["totalResults"] != float64(1) {
			t.Fatalf("list groups: %v", r)
		}
		if r := e.do("DELETE", "/Groups/"+gid, nil); r.status != 204 {
			t.Fatalf("delete group: %d", r.status)
		}
		expectError(t, e.do("GET", "/Groups/"+gid, nil), 404, "")
		// The delete event names the former members, for provisioners'
		// rules.
		if got, _ := e.audit.detail(t, "group.delete")[provision.DetailMembers].([]string); !slices.Equal(got, []string{ids["dave"]}) {
			t.Fatalf("group.delete members: %v, want [dave]", got)
		}
	})
}

func TestSearch(t *testing.T) {
	e := newEnv(t, openSQLite)
	seed(e)
	e.do("POST", "/Groups", map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Admins"})
	req := map[string]any{
		"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter":  `userName sw "a" or userName sw "b"`, "sortBy": "userName", "sortOrder": "descending",
		"attributes": []any{"userName"}, "startIndex": 1, "count": 10,
	}
	if got := names(t, e.do("POST", "/Users/.search", req)); !slices.Equal(got, []string{"bob", "alice"}) {
		t.Fatalf("users search: %v", got)
	}
	req = map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": `displayName sw "A"`}
	got := names(t, e.do("POST", "/.search", req))
	sort.Strings(got)
	if !slices.Equal(got, []string{"Admins", "alice"}) {
		t.Fatalf("root search: %v", got)
	}
	if got := names(t, e.do("POST", "/Groups/.search", req)); !slices.Equal(got, []string{"Admins"}) {
		t.Fatalf("groups search: %v", got)
	}
	expectError(t, e.do("POST", "/Users/.search", map[string]any{"filter": "userName pr"}), 400, "invalidValue")
	expectError(t, e.do("POST", "/Users/.search", map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": 5}), 400, "invalidValue")
	expectError(t, e.do("POST", "/Users/.search", map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": "userName xx 1"}), 400, "invalidFilter")
	expectError(t, e.do("POST", "/.search", map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": "shoeSize pr"}), 400, "invalidFilter")
}

func bulkBody(failOnErrors int, ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, o := range ops {
		l[i] = o
	}
	m := map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": l}
	if failOnErrors > 0 {
		m["failOnErrors"] = failOnErrors
	}
	return m
}

func bulkResults(t testing.TB, r resp) []map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("bulk: %d %s", r.status, r.body)
	}
	m := r.obj(t)
	if s, _ := m["schemas"].([]any); len(s) != 1 || s[0] != "urn:ietf:params:scim:api:messages:2.0:BulkResponse" {
		t.Fatalf("not a BulkResponse: %s", r.body)
	}
	ops, _ := m["Operations"].([]any)
	out := make([]map[string]any, len(ops))
	for i, o := range ops {
		out[i], _ = o.(map[string]any)
	}
	return out
}

func TestBulk(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		core := []any{"urn:ietf:params:scim:schemas:core:2.0:User"}
		gcore := []any{"urn:ietf:params:scim:schemas:core:2.0:Group"}
		// The group comes first but refers to users created after it.
		res := bulkResults(t, e.do("POST", "/Bulk", bulkBody(0,
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g1", "data": map[string]any{"schemas": gcore, "displayName": "Tour Guides",
				"members": []any{map[string]any{"type": "User", "value": "bulkId:u1"}, map[string]any{"value": "bulkId:u2"}}}},
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "u1", "data": map[string]any{"schemas": core, "userName": "bulk1"}},
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "u2", "data": map[string]any{"schemas": core, "userName": "bulk2"}},
			map[string]any{"method": "PATCH", "path": "/Users/bulkId:u2", "data": patchBody(op("replace", "title", "Lead"))},
		)))
		if len(res) != 4 {
			t.Fatalf("results: %v", res)
		}
		for _, r := range res {
			if st, _ := r["status"].(string); !strings.HasPrefix(st, "2") {
				t.Fatalf("operation failed: %v", r)
			}
		}
		if res[0]["status"] != "201" || res[0]["bulkId"] != "g1" || !strings.Contains(str(res[0], "location"), "/Groups/") || str(res[0], "version") == "" {
			t.Fatalf("group result: %v", res[0])
		}
		g := e.do("GET", str(res[0], "location"), nil).obj(t)
		if len(g["members"].([]any)) != 2 {
			t.Fatalf("bulk group members: %v", g)
		}
		u2 := e.do("GET", str(res[2], "location"), nil).obj(t)
		if u2["title"] != "Lead" {
			t.Fatalf("bulk patch: %v", u2)
		}
		uid := str(u2, "id")

		// Errors: a duplicate user, a reference to a failed operation, an
		// unknown bulkId, a stale version; failOnErrors stops the run.
		res = bulkResults(t, e.do("POST", "/Bulk", bulkBody(0,
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "dup", "data": map[string]any{"schemas": core, "userName": "bulk1"}},
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g2", "data": map[string]any{"schemas": gcore, "displayName": "G2", "members": []any{map[string]any{"value": "bulkId:dup"}}}},
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g3", "data": map[string]any{"schemas": gcore, "displayName": "G3", "members": []any{map[string]any{"value": "bulkId:nope"}}}},
			map[string]any{"method": "PUT", "path": "/Users/" + uid, "version": `W/"1"`, "data": map[string]any{"schemas": core, "userName": "bulk2"}},
			map[string]any{"method": "DELETE", "path": "/Users/" + uid},
		)))
		want := []string{"409", "409", "409", "412", "204"}
		for i, r := range res {
			if r["status"] != want[i] {
				t.Fatalf("result %d: %v, want status %s", i, r, want[i])
			}
			if i < 4 {
				resp, _ := r["response"].(map[string]any)
				if s, _ := resp["schemas"].([]any); len(s) != 1 || s[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
					t.Fatalf("result %d has no SCIM error: %v", i, r)
				}
			}
		}
		res = bulkResults(t, e.do("POST", "/Bulk", bulkBody(1,
			map[string]any{"method": "DELETE", "path": "/Users/no-such-user"},
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "later", "data": map[string]any{"schemas": core, "userName": "never"}},
		)))
		if len(res) != 1 || res[0]["status"] != "404" {
			t.Fatalf("failOnErrors: %v", res)
		}
		if r := e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "never"`), nil).obj(t); r["totalResults"] != float64(0) {
			t.Fatal("failOnErrors did not stop the run")
		}
		res = bulkResults(t, e.do("POST", "/Bulk", bulkBody(0,
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "a", "data": map[string]any{"schemas": gcore, "displayName": "A", "members": []any{map[string]any{"value": "bulkId:b"}}}},
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "b", "data": map[string]any{"schemas": gcore, "displayName": "B", "members": []any{map[string]any{"value": "bulkId:a"}}}},
		)))
		if len(res) != 2 || res[0]["status"] != "409" || res[1]["status"] != "409" {
			t.Fatalf("cycle: %v", res)
		}

		many := make([]map[string]any, scim.MaxBulkOperations+1)
		for i := range many {
			many[i] = map[string]any{"method": "DELETE", "path": "/Users/x"}
		}
		expectError(t, e.do("POST", "/Bulk", bulkBody(0, many...)), 413, "tooMany")
		for _, tc := range []struct {
			name string
			body any
		}{
			{"no schemas", map[string]any{"Operations": []any{}}},
			{"no operations", bulkBody(0)},
			{"bad method", bulkBody(0, map[string]any{"method": "GET", "path": "/Users"})},
			{"post without bulkId", bulkBody(0, map[string]any{"method": "POST", "path": "/Users", "data": map[string]any{}})},
			{"duplicate bulkId", bulkBody(0,
				map[string]any{"method": "POST", "path": "/Users", "bulkId": "x", "data": map[string]any{}},
				map[string]any{"method": "POST", "path": "/Users", "bulkId": "x", "data": map[string]any{}})},
			{"data not object", bulkBody(0, map[string]any{"method": "PUT", "path": "/Users/x", "data": "x"})},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/Bulk", tc.body)
				if r.status != 400 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
			})
		}
		res = bulkResults(t, e.do("POST", "/Bulk", bulkBody(0, map[string]any{"method": "POST", "path": "/Things", "bulkId": "t", "data": map[string]any{}})))
		if res[0]["status"] != "400" {
			t.Fatalf("bad path: %v", res)
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, openSQLite)
	ids := seed(e)
	if r := e.do("GET", e.root+"/scim2/Users/"+ids["alice"], nil); r.status != 404 {
		t.Fatalf("another tenant's user is visible: %d", r.status)
	}
	if r := e.do("GET", e.root+"/scim2/Users", nil).obj(t); r["totalResults"] != float64(0) {
		t.Fatalf("default tenant lists another tenant's users: %v", r["totalResults"])
	}
	// The default tenant has its own service at /scim2.
	r := e.do("POST", e.root+"/scim2/Users", map[string]any{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "alice"})
	if r.status != 201 || !strings.HasPrefix(r.header.Get("Location"), e.root+"/scim2/Users/") {
		t.Fatalf("default tenant create: %d %s", r.status, r.body)
	}
}

// TestNoServerErrorsOnHostileInput throws malformed input at every route
// and requires a SCIM error below 500 each time.
func TestNoServerErrorsOnHostileInput(t *testing.T) {
	e := newEnv(t, openSQLite)
	ids := seed(e)
	bodies := []string{`{`, `null`, `"x"`, `{"schemas":null}`, `{"schemas":[1]}`, `{"Operations":[null]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":{"a":1}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name","value":[1,2]}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"PATCH","path":"/Users/` + ids["bob"] + `","data":{"Operations":5}}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"z","emails":[{"value":{"x":1}}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"z","name":{"givenName":["a"]}}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"count":1e300,"startIndex":-1e300}`,
	}
	paths := []string{"/Users", "/Users/" + ids["bob"], "/Groups", "/Users/.search", "/.search", "/Bulk"}
	for _, p := range paths {
		for _, m := range []string{"POST", "PUT", "PATCH"} {
			for _, b := range bodies {
				r := e.do(m, p, b)
				if r.status >= 500 {
					t.Fatalf("%s %s %s: %d %s", m, p, b, r.status, r.body)
				}
				if r.status >= 400 {
					var body map[string]any
					if err := json.Unmarshal(r.body, &body); err != nil || body["schemas"] == nil {
						t.Fatalf("%s %s %s: not a SCIM error: %d %s", m, p, b, r.status, r.body)
					}
				}
			}
		}
	}
}
