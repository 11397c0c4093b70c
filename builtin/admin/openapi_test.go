package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/latchid/latch/builtin/admin"
)

// TestOpenAPIDocument loads the served document with an independent OpenAPI
// implementation, validates it, and checks it describes every route the
// server answers.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/api/admin/v1/openapi.json", nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	for _, rt := range []struct{ method, path string }{
		{"POST", "/users"}, {"GET", "/users/{id}"}, {"PATCH", "/users/{id}"}, {"DELETE", "/users/{id}"},
		{"GET", "/groups/{id}/members"}, {"PUT", "/roles/{id}/users/{subject}"},
		{"POST", "/clients/{id}/secret"}, {"POST", "/keys/rotate"}, {"GET", "/audit"}, {"POST", "/tenants"},
	} {
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s %s missing from the document", rt.method, rt.path)
		}
	}
	// Every documented operation is served: a call without credentials
	// gets 401 from the API, not 404 or 405 from the router.
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			url := "/api/admin/v1" + strings.NewReplacer("{id}", "x", "{user}", "y", "{subject}", "z").Replace(path)
			got := e.call(method, url, nil, "Authorization", "")
			if got.status != 401 {
				t.Errorf("%s %s: %d, want 401 (route not served?)", method, path, got.status)
			}
		}
	}
	create := doc.Paths.Find("/users").Post
	schema := create.RequestBody.Value.Content.Get("application/json").Schema.Value
	for _, f := range []string{"username", "password", "email", "attributes"} {
		if schema.Properties[f] == nil {
			t.Errorf("user create schema lacks %q", f)
		}
	}
	if admin.OpenAPIPath("/a/:b/c/:d") != "/a/{b}/c/{d}" {
		t.Error("path conversion")
	}
}
