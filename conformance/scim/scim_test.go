package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	bulkSchema  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	entSchema   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (c client) do(method, path string, body any, hdr ...string) answer {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Accept", "application/scim+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			c.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
		}
	}
	return a
}

func (a answer) want(t *testing.T, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	return a
}

func (a answer) wantError(t *testing.T, status int, scimType string) {
	t.Helper()
	a.want(t, status)
	schemas, _ := a.body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != errorSchema || a.body["status"] != itoa(status) {
		t.Fatalf("not a SCIM error with status %d: %s", status, a.raw)
	}
	if got, _ := a.body["scimType"].(string); got != scimType {
		t.Fatalf("scimType %q, want %q: %s", got, scimType, a.raw)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func token(t *testing.T, tokenURL, id, secret string, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: scopes}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials for %s: %v", id, err)
	}
	return tok.AccessToken
}

// registerClient registers a confidential client of the default tenant
// with the scopes, through the admin API.
func registerClient(t *testing.T, srv *live.Server, id string, scopes ...string) string {
	t.Helper()
	const secret = "conformance-scim-client-secret-0123456789"
	var out map[string]any
	st := srv.Admin("POST", "/clients", map[string]any{
		"client_id": id, "client_secret": secret, "name": id,
		"grant_types": []string{"client_credentials"}, "scopes": scopes,
	}, &out)
	if st != http.StatusCreated {
		t.Fatalf("registering client %s: %d %v", id, st, out)
	}
	return secret
}

func TestSCIMAgainstLiveServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	srv := live.Start(t)
	adminTok := token(t, srv.URL+"/oauth2/token", "latch-admin", live.AdminSecret, "latch:admin")
	readSecret := registerClient(t, srv, "scim-reader", "latch:scim:read")
	readTok := token(t, srv.URL+"/oauth2/token", "scim-reader", readSecret, "latch:scim:read")
	writeSecret := registerClient(t, srv, "scim-writer", "latch:scim:write")
	writeTok := token(t, srv.URL+"/oauth2/token", "scim-writer", writeSecret, "latch:scim:write")

	admin := client{t: t, base: srv.URL + "/scim2", token: adminTok}
	reader := client{t: t, base: srv.URL + "/scim2", token: readTok}
	writer := client{t: t, base: srv.URL + "/scim2", token: writeTok}
	anonymous := client{t: t, base: srv.URL + "/scim2"}

	t.Run("authentication", func(t *testing.T) {
		a := anonymous.do("GET", "/Users", nil)
		a.wantError(t, 401, "")
		if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("WWW-Authenticate: %q", a.header.Get("WWW-Authenticate"))
		}
		client{t: t, base: admin.base, token: adminTok + "x"}.do("GET", "/Users", nil).wantError(t, 401, "")
		reader.do("GET", "/Users", nil).want(t, 200)
		a = reader.do("POST", "/Users", map[string]any{"schemas": []any{userSchema}, "userName": "nope"})
		a.wantError(t, 403, "")
		if !strings.Contains(a.header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Fatalf("WWW-Authenticate: %q", a.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("discovery", func(t *testing.T) {
		spc := reader.do("GET", "/ServiceProviderConfig", nil).want(t, 200)
		if !strings.HasPrefix(spc.header.Get("Content-Type"), "application/scim+json") {
			t.Fatalf("content type %q", spc.header.Get("Content-Type"))
		}
		for _, p := range []string{"/ResourceTypes", "/ResourceTypes/User", "/Schemas", "/Schemas/" + entSchema} {
			reader.do("GET", p, nil).want(t, 200)
		}
	})

	var aliceID, bobID string
	t.Run("users", func(t *testing.T) {
		a := writer.do("POST", "/Users", map[string]any{
			"schemas": []any{userSchema, entSchema}, "userName": "alice", "password": "a long enough password",
			"name":    map[string]any{"givenName": "Alice", "familyName": "Liddell"},
			"emails":  []any{map[string]any{"value": "alice@example.com", "type": "work", "primary": true}},
			entSchema: map[string]any{"department": "R&D"},
		}).want(t, 201)
		aliceID, _ = a.body["id"].(string)
		if a.header.Get("ETag") != `W/"1"` || a.body["password"] != nil {
			t.Fatalf("created: %v %s", a.header, a.raw)
		}
		b := admin.do("POST", "/Users", map[string]any{"schemas": []any{userSchema}, "userName": "bob", "active": false}).want(t, 201)
		bobID, _ = b.body["id"].(string)
		admin.do("POST", "/Users", map[string]any{"schemas": []any{userSchema}, "userName": "ALICE"}).wantError(t, 409, "uniqueness")

		// The admin API sees the same user: one store behind both.
		var au map[string]any
		if st := srv.Admin("GET", "/users/"+aliceID, nil, &au); st != 200 || au["email"] != "alice@example.com" {
			t.Fatalf("admin API view: %d %v", st, au)
		}

		l := reader.do("GET", "/Users?filter="+url.QueryEscape(`emails[type eq "work" and value co "@example.com"] and `+entSchema+`:department eq "R&D"`), nil).want(t, 200)
		if l.body["totalResults"] != float64(1) {
			t.Fatalf("filter: %s", l.raw)
		}
		l = reader.do("GET", "/Users?filter="+url.QueryEscape(`active eq false or userName sw "adm"`)+"&sortBy=userName&attributes=userName", nil).want(t, 200)
		if l.body["totalResults"] != float64(2) {
			t.Fatalf("or filter: %s", l.raw)
		}
		reader.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "x" or 1 eq 1`), nil).wantError(t, 400, "invalidFilter")

		p := writer.do("PATCH", "/Users/"+aliceID, map[string]any{"schemas": []any{patchSchema}, "Operations": []any{
			map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": "alice@work.example"},
			map[string]any{"op": "add", "path": "title", "value": "Explorer"},
		}}, "If-Match", `W/"1"`).want(t, 200)
		if p.header.Get("ETag") != `W/"2"` || p.body["title"] != "Explorer" {
			t.Fatalf("patch: %s", p.raw)
		}
		writer.do("PUT", "/Users/"+aliceID, map[string]any{"schemas": []any{userSchema}, "userName": "alice"}, "If-Match", `W/"1"`).wantError(t, 412, "")
	})

	t.Run("groups and bulk", func(t *testing.T) {
		g := writer.do("POST", "/Groups", map[string]any{"schemas": []any{groupSchema}, "displayName": "Explorers",
			"members": []any{map[string]any{"value": aliceID}}}).want(t, 201)
		gid, _ := g.body["id"].(string)
		writer.do("PATCH", "/Groups/"+gid, map[string]any{"schemas": []any{patchSchema}, "Operations": []any{
			map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": bobID}}},
		}}).want(t, 200)
		u := reader.do("GET", "/Users/"+bobID, nil).want(t, 200)
		if gs, _ := u.body["groups"].([]any); len(gs) != 1 {
			t.Fatalf("bob's groups: %s", u.raw)
		}
		res := writer.do("POST", "/Bulk", map[string]any{"schemas": []any{bulkSchema}, "Operations": []any{
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "c", "data": map[string]any{"schemas": []any{userSchema}, "userName": "carol"}},
			map[string]any{"method": "PATCH", "path": "/Groups/" + gid, "data": map[string]any{"schemas": []any{patchSchema}, "Operations": []any{
				map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "bulkId:c"}}}}}},
		}}).want(t, 200)
		ops, _ := res.body["Operations"].([]any)
		if len(ops) != 2 {
			t.Fatalf("bulk: %s", res.raw)
		}
		gg := reader.do("GET", "/Groups/"+gid, nil).want(t, 200)
		if ms, _ := gg.body["members"].([]any); len(ms) != 3 {
			t.Fatalf("members after bulk: %s", gg.raw)
		}
		writer.do("DELETE", "/Groups/"+gid, nil).want(t, 204)
	})

	t.Run("tenants", func(t *testing.T) {
		var tn map[string]any
		if st := srv.Admin("POST", "/tenants", map[string]any{"name": "acme"}, &tn); st != 201 {
			t.Fatalf("creating tenant: %d %v", st, tn)
		}
		acme := client{t: t, base: srv.URL + "/t/acme/scim2", token: adminTok}
		acme.do("POST", "/Users", map[string]any{"schemas": []any{userSchema}, "userName": "alice"}).want(t, 201)
		if l := acme.do("GET", "/Users", nil).want(t, 200); l.body["totalResults"] != float64(1) {
			t.Fatalf("acme users: %s", l.raw)
		}
		// A read-scoped token of the default tenant does not reach acme.
		client{t: t, base: acme.base, token: readTok}.do("GET", "/Users", nil).wantError(t, 401, "")
	})

	t.Run("hostile input", func(t *testing.T) {
		admin.do("GET", "/Users/"+strings.Repeat("x", 100), nil).wantError(t, 404, "")
		admin.do("POST", "/Users/.search", map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
			"filter": strings.Repeat("(", 40) + "userName pr" + strings.Repeat(")", 40)}).wantError(t, 400, "invalidFilter")
		admin.do("POST", "/Users", map[string]any{"schemas": []any{userSchema}, "userName": strings.Repeat("u", 1000)}).wantError(t, 400, "invalidValue")
		admin.do("GET", "/Me", nil).wantError(t, 501, "")
	})
}
