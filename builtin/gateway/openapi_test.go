package gateway

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const petstore = `openapi: 3.0.3
info: {title: Pet Store, version: "1.0"}
servers: [{url: "https://api.example.com/pets-api"}]
x-latch-upstream: pets
x-latch-throttle: {rate: 100, period: 1m, key: client}
x-latch-cors: {allow_origins: ["https://app.example.com"]}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows: {clientCredentials: {tokenUrl: "https://idp.example/token", scopes: {"pets:read": r, "pets:write": w}}}
security: [{oauth: ["pets:read"]}]
paths:
  /pets:
    get:
      operationId: listPets
      responses: {"200": {description: ok}}
    post:
      operationId: addPet
      security: [{oauth: ["pets:write"]}]
      x-latch-throttle: {rate: 5, period: 1s}
      responses: {"201": {description: created}}
  /pets/{petId}:
    get:
      operationId: getPet
      x-latch-scopes: ["pets:read", "pets:detail"]
      x-latch-policy: 'request.method == "GET"'
      responses: {"200": {description: ok}}
  /health:
    get:
      security: []
      responses: {"200": {description: ok}}
`

func TestImportOpenAPI(t *testing.T) {
	api, err := ImportOpenAPI([]byte(petstore), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if api.Name != "pet-store" || api.Upstream != "pets" || api.BasePath != "/pets-api" || api.Throttle == nil || api.CORS == nil {
		t.Fatalf("API %+v", api)
	}
	byName := map[string]RouteConfig{}
	for _, r := range api.Routes {
		byName[r.Name] = r
	}
	if r := byName["listPets"]; r.Path != "/pets" || !slices.Equal(r.Methods, []string{"GET"}) || !slices.Equal(r.Scopes, []string{"pets:read"}) {
		t.Errorf("listPets %+v", r)
	}
	if r := byName["addPet"]; !slices.Equal(r.Scopes, []string{"pets:write"}) || r.Throttle == nil || r.Throttle.Rate != 5 {
		t.Errorf("addPet %+v", r)
	}
	if r := byName["getPet"]; r.Path != "/pets/{petId}" || !slices.Equal(r.Scopes, []string{"pets:read", "pets:detail"}) || r.Policy == "" {
		t.Errorf("getPet %+v", r)
	}
	if r := byName["GET /health"]; r.Security == nil || !r.Security.None || len(r.Scopes) != 0 {
		t.Errorf("health %+v", r)
	}
	// The options win over the extensions.
	api, err = ImportOpenAPI([]byte(petstore), ImportOptions{Name: "pets-v2", Upstream: "other", BasePath: "/v2"})
	if err != nil || api.Name != "pets-v2" || api.Upstream != "other" || api.BasePath != "/v2" {
		t.Fatalf("options: %+v %v", api, err)
	}
}

func TestImportOpenAPIErrors(t *testing.T) {
	for _, c := range []struct{ old, new, want string }{
		{"x-latch-throttle: {rate: 5, period: 1s}", "x-latch-throttle: {rate: -5}", "/paths/~1pets/post/x-latch-throttle.rate"},
		{"x-latch-throttle: {rate: 5, period: 1s}", "x-latch-throttle: {rate: 5, speed: 1}", "/paths/~1pets/post/x-latch-throttle"},
		{"x-latch-policy: 'request.method == \"GET\"'", "x-latch-policy: 'request.method =='", "/paths/~1pets~1{petId}/get/x-latch-policy"},
		{"x-latch-policy: 'request.method == \"GET\"'", "x-latch-polcy: 'true'", "/paths/~1pets~1{petId}/get/x-latch-polcy: unknown extension"},
		{"x-latch-upstream: pets", "x-latch-upstream: [pets]", "/x-latch-upstream"},
		{"x-latch-upstream: pets", "x-latch-up: pets", "/x-latch-up: unknown extension"},
		{"x-latch-upstream: pets", "", "/x-latch-upstream: required"},
		{"x-latch-scopes: [\"pets:read\", \"pets:detail\"]", "x-latch-auth: maybe", "/paths/~1pets~1{petId}/get/x-latch-auth"},
		{"openapi: 3.0.3", "openapi: \"2.0\"", "/openapi"},
		{"x-latch-cors: {allow_origins: [\"https://app.example.com\"]}", "x-latch-cors: {allow_origins: [\"*\"], allow_credentials: true}", "cors"},
	} {
		doc := strings.Replace(petstore, c.old, c.new, 1)
		_, err := ImportOpenAPI([]byte(doc), ImportOptions{})
		if err == nil || !errors.Is(err, ErrInvalidOpenAPI) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.new, err, c.want)
		}
	}
	if _, err := ImportOpenAPI([]byte("{"), ImportOptions{}); !errors.Is(err, ErrInvalidOpenAPI) {
		t.Errorf("malformed: %v", err)
	}
}

// FuzzImportOpenAPI: no document makes the importer panic, and what it
// accepts is a valid stored API.
func FuzzImportOpenAPI(f *testing.F) {
	f.Add([]byte(petstore))
	f.Add([]byte(`openapi: 3.1.0
info: {title: t, version: "1"}
x-latch-upstream: u
paths: {/a: {get: {responses: {"200": {description: ok}}}}}`))
	f.Add([]byte(`{"openapi":"3.0.0","info":{"title":"x","version":"1"},"paths":{"/{a}/{b}":{"delete":{"x-latch-auth":"none"}}},"x-latch-upstream":"u"}`))
	f.Add([]byte(`openapi: 3.0.0
paths: {/a: {$ref: "#/paths/~1a"}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		api, err := ImportOpenAPI(doc, ImportOptions{})
		if err != nil {
			if !errors.Is(err, ErrInvalidOpenAPI) {
				t.Fatalf("error outside ErrInvalidOpenAPI: %v", err)
			}
			return
		}
		b, err := yamlMarshal(api)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckDocument(KindAPI, b); err != nil {
			t.Fatalf("accepted API does not check: %v\n%s", err, b)
		}
	})
}

func yamlMarshal(v any) ([]byte, error) { return yaml.Marshal(v) }
