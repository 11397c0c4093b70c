package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const managedRoutes = `
deny_poll_interval: 200ms
issuers:
  - name: partner
    issuer: https://partner.example
    jwks_uri: {{JWKS}}/jwks
    audiences: [orders-api]
    algorithms: [RS256]
    allow_http: true
    allow_private_network: true
apis:
  - name: from-file
    base_path: /file
    upstream: echo
    security: {none: true}
upstreams:
  - name: echo
    endpoints: [{url: "{{UP}}"}]
`

const managedOpenAPI = `openapi: 3.0.3
info: {title: Pets, version: "1.0"}
servers: [{url: "https://pets.example/pets"}]
x-latch-upstream: stored-up
x-latch-security: {issuers: [partner]}
x-latch-cors: {allow_origins: ["https://*.pets.example"], allow_methods: [GET]}
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://partner.example/token", scopes: {"orders:read": r}}}}
security: [{oauth: ["orders:read"]}]
paths:
  /{petId}:
    get:
      operationId: getPet
      responses: {"200": {description: ok}}
  /{petId}/adopt:
    post:
      operationId: adoptPet
      x-latch-scopes: ["pets:adopt"]
      responses: {"200": {description: ok}}
  /status:
    get:
      security: []
      responses: {"200": {description: ok}}
`

// TestGatewayManaged manages APIs and upstreams through the admin API and
// the CLI of a running `latch serve` with the gateway role: stored APIs
// reach the gateway without a restart, OpenAPI documents import with their
// x-latch-* extensions, CORS preflights are answered by the gateway and CEL
// policies refuse with 403.
func TestGatewayManaged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server; skipped in -short mode")
	}
	dir := t.TempDir()
	up := newUpstream(t)
	partner := newJWKSServer(t)
	addr, gwAddr := freeAddr(t), freeAddr(t)
	routes := strings.NewReplacer("{{JWKS}}", partner.URL, "{{UP}}", up.URL).Replace(managedRoutes)
	routesFile := filepath.Join(dir, "routes.yaml")
	must(t, os.WriteFile(routesFile, []byte(routes), 0o600))
	cfgFile := filepath.Join(dir, "latch.yaml")
	must(t, os.WriteFile(cfgFile, []byte(latchYAML("", "")), 0o600))
	n := startNode(t, addr, gwAddr, []string{"LATCH_GATEWAY_ROUTES_FILE=" + routesFile},
		"serve", "--config", cfgFile, "--data", filepath.Join(dir, "a"))

	admin := func(method, path string, in any) (int, map[string]any) {
		t.Helper()
		var out map[string]any
		st := adminJSON(t, n.url, method, path, in, &out)
		return st, out
	}
	token := func(scope string) string {
		return partner.sign(t, "partner-1", partnerClaims(func(c map[string]any) { c["scope"] = scope }))
	}

	t.Run("stored upstream and API, without restart", func(t *testing.T) {
		if st, out := admin("PUT", "/gateway/upstreams/stored-up", map[string]any{"endpoints": []any{map[string]any{"url": up.URL}}}); st != http.StatusOK {
			t.Fatalf("put upstream: %d %v", st, out)
		}
		api := map[string]any{
			"base_path": "/catalog", "upstream": "stored-up", "strip_base_path": true,
			"security": map[string]any{"issuers": []string{"partner"}},
			"policy":   `claims.scope.contains("admin") && request.method == "GET"`,
			"routes":   []any{map[string]any{"path": "/items/{id}", "methods": []string{"GET", "DELETE"}}},
		}
		if st, out := admin("PUT", "/gateway/apis/catalog", api); st != http.StatusOK || out["name"] != "catalog" {
			t.Fatalf("put API: %d %v", st, out)
		}
		admTok := token("orders:read admin")
		eventually(t, "the stored API is served", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/catalog/items/9", admTok, nil)
			return st == http.StatusOK
		})
		if up.count("GET /items/9") == 0 {
			t.Fatal("the upstream did not see the request")
		}
		// The CEL policy: a token without "admin", or another method, is refused.
		for _, c := range []struct{ method, tok string }{{"GET", token("orders:read")}, {"DELETE", admTok}} {
			st, body, hdr := call(t, c.method, n.gw+"/catalog/items/9", c.tok, nil)
			if st != http.StatusForbidden || hdr.Get("Content-Type") != "application/json" || !strings.Contains(body, `"code":"forbidden"`) {
				t.Fatalf("%s refused by policy: %d %s", c.method, st, body)
			}
		}
		var list struct {
			Items []struct {
				Name string          `json:"name"`
				Spec json.RawMessage `json:"spec"`
			} `json:"items"`
		}
		if st := adminJSON(t, n.url, "GET", "/gateway/apis", nil, &list); st != http.StatusOK || len(list.Items) != 1 || list.Items[0].Name != "catalog" {
			t.Fatalf("list: %d %+v", st, list)
		}
		// The published routes show the stored API beside the file's.
		var rs struct {
			Items []struct {
				API  string `json:"api"`
				Path string `json:"path"`
			} `json:"items"`
		}
		adminJSON(t, n.url, "GET", "/gateway/routes", nil, &rs)
		var paths []string
		for _, r := range rs.Items {
			paths = append(paths, r.API+" "+r.Path)
		}
		if !strings.Contains(strings.Join(paths, ","), "catalog /catalog/items/{}") || !strings.Contains(strings.Join(paths, ","), "from-file /file/*") {
			t.Fatalf("routes %v", paths)
		}
	})

	t.Run("bad documents are refused with their error", func(t *testing.T) {
		for _, c := range []struct {
			path string
			in   map[string]any
			want int
			msg  string
		}{
			{"/gateway/apis/bad", map[string]any{"upstream": "stored-up", "security": map[string]any{"none": true}, "policy": "request.method =="}, 400, "policy"},
			{"/gateway/apis/bad", map[string]any{"upstream": "nowhere", "security": map[string]any{"none": true}}, 400, `no upstream is named "nowhere"`},
			{"/gateway/apis/bad", map[string]any{"upstream": "stored-up", "security": map[string]any{"issuers": []string{"ghost"}}}, 400, `no issuer is named "ghost"`},
			{"/gateway/apis/bad", map[string]any{"upstream": "stored-up", "surprise": 1}, 400, "surprise"},
			{"/gateway/apis/bad", map[string]any{"name": "other", "upstream": "stored-up"}, 400, "name"},
			{"/gateway/apis/from-file", map[string]any{"upstream": "echo", "security": map[string]any{"none": true}}, 409, "routes file already defines"},
			{"/gateway/upstreams/echo", map[string]any{"endpoints": []any{map[string]any{"url": up.URL}}}, 409, "routes file already defines"},
			{"/gateway/upstreams/bad", map[string]any{"endpoints": []any{map[string]any{"url": "ftp://x"}}}, 400, "endpoints[0].url"},
		} {
			st, out := admin("PUT", c.path, c.in)
			if st != c.want || !strings.Contains(out["message"].(string), c.msg) {
				t.Errorf("PUT %s %v: %d %v, want %d %q", c.path, c.in, st, out, c.want, c.msg)
			}
		}
		// An upstream an API uses cannot be deleted.
		if st, out := admin("DELETE", "/gateway/upstreams/stored-up", nil); st != http.StatusBadRequest || !strings.Contains(out["message"].(string), "stored-up") {
			t.Fatalf("deleting a used upstream: %d %v", st, out)
		}
		// The gateway still serves the good configuration.
		if st, _, _ := call(t, "GET", n.gw+"/catalog/items/1", token("admin"), nil); st != http.StatusOK {
			t.Fatalf("after refusals: %d", st)
		}
	})

	t.Run("OpenAPI import through the admin API", func(t *testing.T) {
		bad := strings.Replace(managedOpenAPI, `x-latch-scopes: ["pets:adopt"]`, `x-latch-scopes: "pets:adopt"`, 1)
		st, body := rawPost(t, n.url+"/api/admin/v1/gateway/import", bad)
		if st != http.StatusBadRequest || !strings.Contains(body, "/paths/~1{petId}~1adopt/post/x-latch-scopes") {
			t.Fatalf("bad import: %d %s", st, body)
		}
		st, body = rawPost(t, n.url+"/api/admin/v1/gateway/import", managedOpenAPI)
		if st != http.StatusCreated || !strings.Contains(body, `"name":"pets"`) {
			t.Fatalf("import: %d %s", st, body)
		}
		eventually(t, "the imported API is served", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/pets/status", "", nil)
			return st == http.StatusOK
		})
		if st, _, _ := call(t, "GET", n.gw+"/pets/7", "", nil); st != http.StatusUnauthorized {
			t.Fatalf("getPet without a token: %d", st)
		}
		if st, _, _ := call(t, "GET", n.gw+"/pets/7", token("orders:read"), nil); st != http.StatusOK {
			t.Fatalf("getPet: %d", st)
		}
		if st, body, _ := call(t, "POST", n.gw+"/pets/7/adopt", token("orders:read"), nil); st != http.StatusForbidden || !strings.Contains(body, "pets:adopt") {
			t.Fatalf("adoptPet without its scope: %d %s", st, body)
		}
		if st, _, _ := call(t, "POST", n.gw+"/pets/7/adopt", token("pets:adopt"), nil); st != http.StatusOK {
			t.Fatalf("adoptPet: %d", st)
		}
	})

	t.Run("CORS preflight answered by the gateway", func(t *testing.T) {
		before := up.count("OPTIONS /pets/7")
		st, _, hdr := call(t, "OPTIONS", n.gw+"/pets/7", "", map[string]string{"Origin": "https://shop.pets.example", "Access-Control-Request-Method": "GET"})
		if st != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != "https://shop.pets.example" {
			t.Fatalf("preflight: %d %v", st, hdr)
		}
		st, _, hdr = call(t, "OPTIONS", n.gw+"/pets/7", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
		if st != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("disallowed preflight: %d %v", st, hdr)
		}
		if up.count("OPTIONS /pets/7") != before {
			t.Fatal("a preflight reached the upstream")
		}
		_, _, hdr = call(t, "GET", n.gw+"/pets/7", token("orders:read"), map[string]string{"Origin": "https://shop.pets.example"})
		if hdr.Get("Access-Control-Allow-Origin") != "https://shop.pets.example" {
			t.Fatalf("actual request: %v", hdr)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		bin, err := buildLatch()
		if err != nil {
			t.Fatal(err)
		}
		latch := func(args ...string) (string, error) {
			cmd := exec.Command(bin, append(args, "--url", n.url)...)
			cmd.Env = append(os.Environ(), "LATCH_ADMIN_CLIENT_SECRET="+clientSecret)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		doc := filepath.Join(dir, "openapi.yaml")
		must(t, os.WriteFile(doc, []byte(managedOpenAPI), 0o600))
		out, err := latch("gateway", "import", doc, "--name", "pets-cli", "--base-path", "/pets-cli")
		if err != nil || !strings.Contains(out, `"pets-cli"`) {
			t.Fatalf("gateway import: %v\n%s", err, out)
		}
		eventually(t, "the CLI-imported API is served", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/pets-cli/status", "", nil)
			return st == http.StatusOK
		})
		out, err = latch("gateway", "apis", "list")
		if err != nil || !strings.Contains(out, "pets-cli") || !strings.Contains(out, "catalog") {
			t.Fatalf("gateway apis list: %v\n%s", err, out)
		}
		upFile := filepath.Join(dir, "up.yaml")
		must(t, os.WriteFile(upFile, []byte("name: cli-up\nendpoints: [{url: \""+up.URL+"\"}]\nretries: {attempts: 2, on: [\"503\"]}\n"), 0o600))
		if out, err := latch("gateway", "upstreams", "put", upFile); err != nil || !strings.Contains(out, "cli-up") {
			t.Fatalf("gateway upstreams put: %v\n%s", err, out)
		}
		if out, err := latch("gateway", "apis", "delete", "pets-cli"); err != nil {
			t.Fatalf("gateway apis delete: %v\n%s", err, out)
		}
		eventually(t, "the deleted API is gone", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/pets-cli/status", "", nil)
			return st == http.StatusNotFound
		})
		if out, err := latch("gateway", "import", filepath.Join(dir, "missing.yaml")); err == nil {
			t.Fatalf("importing a missing file succeeded: %s", out)
		}
	})

	t.Run("throttle keyed by a CEL expression", func(t *testing.T) {
		if st, out := admin("PUT", "/gateway/apis/bad-key", map[string]any{"upstream": "echo", "security": map[string]any{"none": true},
			"throttle": map[string]any{"rate": 2, "key": "cel:1 + 1"}}); st != http.StatusBadRequest || !strings.Contains(out["message"].(string), "must be a string") {
			t.Fatalf("non-string key expression: %d %v", st, out)
		}
		api := map[string]any{"base_path": "/tenants", "upstream": "echo", "security": map[string]any{"none": true},
			"throttle": map[string]any{"rate": 2, "period": "1h", "key": `cel:request.headers["x-tenant"] + "/" + request.method`}}
		if st, out := admin("PUT", "/gateway/apis/per-tenant", api); st != http.StatusOK {
			t.Fatalf("put: %d %v", st, out)
		}
		eventually(t, "the throttled API is served", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/tenants/x", "", map[string]string{"X-Tenant": "warmup"})
			return st == http.StatusOK
		})
		for i, want := range []int{200, 200, 429} {
			if st, _, _ := call(t, "GET", n.gw+"/tenants/x", "", map[string]string{"X-Tenant": "acme"}); st != want {
				t.Fatalf("acme request %d: %d, want %d", i, st, want)
			}
		}
		if st, _, _ := call(t, "GET", n.gw+"/tenants/x", "", map[string]string{"X-Tenant": "globex"}); st != http.StatusOK {
			t.Fatalf("another tenant: %d", st)
		}
		if st, _, _ := call(t, "POST", n.gw+"/tenants/x", "", map[string]string{"X-Tenant": "acme"}); st != http.StatusOK {
			t.Fatalf("another method of the same tenant: %d", st)
		}
	})

	t.Run("delete reaches the gateway", func(t *testing.T) {
		if st, _ := admin("DELETE", "/gateway/apis/catalog", nil); st != http.StatusNoContent {
			t.Fatalf("delete: %d", st)
		}
		eventually(t, "the deleted API is gone", func() bool {
			st, _, _ := call(t, "GET", n.gw+"/catalog/items/1", token("admin"), nil)
			return st == http.StatusNotFound
		})
		if st, _ := admin("GET", "/gateway/apis/catalog", nil); st != http.StatusNotFound {
			t.Fatalf("get deleted: %d", st)
		}
	})
}

// rawPost posts a YAML body to the admin API.
func rawPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("latch-admin", clientSecret)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
