package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/claims/mapping"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/extension"
)

// load loads one claims.mapping instance with cfg through a fresh registry.
func load(t testing.TB, cfg string) (*extension.Instance, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(mapping.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: mapping.ID, Config: json.RawMessage(cfg)},
	}, extension.LoadOptions{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = set.Close(context.Background()) })
	inst, _ := set.Get(string(mapping.ID))
	return inst, nil
}

func mustLoad(t testing.TB, cfg string) *extension.Instance {
	t.Helper()
	inst, err := load(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// mapClaims calls the instance as the kernel does: through extension.Call,
// then claims.Check.
func mapClaims(ctx context.Context, inst *extension.Instance, req abi.MapRequest) (map[string]any, error) {
	m, _ := extension.As[claims.Mapper](inst)
	var out map[string]any
	err := extension.Call(ctx, inst, abi.OpMapClaims, func(ctx context.Context) error {
		var err error
		out, err = claims.Check(m.Map(ctx, req))
		return err
	})
	return out, err
}

const remoteToLocal = `{"mappings": [
	{"from": "remote", "to": "local", "issuer": "https://idp.example.com", "drop_unmapped": true, "rules": [
		{"from": "mail", "to": "email"},
		{"to": "source", "value": "idp"}
	]},
	{"from": "remote", "to": "local", "rules": [
		{"from": "http://wso2.org/claims/emailaddress", "to": "email"},
		{"from": "sub", "to": "remote_sub", "copy": true},
		{"to": "tenant", "value": "acme"},
		{"to": "flags", "value": {"imported": true, "tags": ["a", "b"]}},
		{"to": "name", "template": "{given_name} {family_name}"},
		{"to": "label", "template": "{{{given_name}}} #{age} {verified}"}
	]}
]}`

func TestMap(t *testing.T) {
	inst := mustLoad(t, remoteToLocal)
	tests := []struct {
		name string
		req  abi.MapRequest
		want map[string]any
	}{
		{
			name: "rename, copy, constant and template; the rest passes",
			req: abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: "https://other.example.com", Claims: map[string]any{
				"http://wso2.org/claims/emailaddress": "alice@example.com",
				"sub":                                 "u-42",
				"given_name":                          "Alice",
				"family_name":                         "Liddell",
				"age":                                 float64(30),
				"verified":                            true,
				"hd":                                  "example.com",
			}},
			want: map[string]any{
				"email":       "alice@example.com",
				"sub":         "u-42",
				"remote_sub":  "u-42",
				"tenant":      "acme",
				"flags":       map[string]any{"imported": true, "tags": []any{"a", "b"}},
				"name":        "Alice Liddell",
				"label":       "{Alice} #30 true",
				"given_name":  "Alice",
				"family_name": "Liddell",
				"age":         float64(30),
				"verified":    true,
				"hd":          "example.com",
			},
		},
		{
			name: "absent sources set nothing; a template of absent claims sets nothing",
			req:  abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Claims: map[string]any{"hd": "example.com"}},
			want: map[string]any{
				"hd": "example.com", "tenant": "acme", "label": "{} #",
				"flags": map[string]any{"imported": true, "tags": []any{"a", "b"}},
			},
		},
		{
			name: "a template with one claim absent is trimmed",
			req:  abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Claims: map[string]any{"given_name": "Alice"}},
			want: map[string]any{
				"given_name": "Alice", "name": "Alice", "tenant": "acme", "label": "{Alice} #",
				"flags": map[string]any{"imported": true, "tags": []any{"a", "b"}},
			},
		},
		{
			name: "the issuer-specific mapping comes first and drops the unmapped",
			req: abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: "https://idp.example.com", Claims: map[string]any{
				"mail": "alice@example.com", "hd": "example.com",
			}},
			want: map[string]any{"email": "alice@example.com", "source": "idp"},
		},
		{
			name: "dialects no mapping covers pass through",
			req:  abi.MapRequest{From: abi.DialectLocal, To: abi.DialectOIDC, Claims: map[string]any{"email": "a@example.com"}},
			want: map[string]any{"email": "a@example.com"},
		},
		{
			name: "no claims in, an empty map out",
			req:  abi.MapRequest{From: abi.DialectLocal, To: abi.DialectOIDC},
			want: map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := deepCopy(t, tt.req.Claims)
			got, err := mapClaims(t.Context(), inst, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("claims = %v\nwant     %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.req.Claims, before) {
				t.Errorf("the input claims were modified: %v, were %v", tt.req.Claims, before)
			}
		})
	}
}

// TestConstantsAreCopies checks that changing a constant in one answer does
// not change the next answer.
func TestConstantsAreCopies(t *testing.T) {
	inst := mustLoad(t, remoteToLocal)
	req := abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal}
	first, err := mapClaims(t.Context(), inst, req)
	if err != nil {
		t.Fatal(err)
	}
	first["flags"].(map[string]any)["imported"] = false
	second, err := mapClaims(t.Context(), inst, req)
	if err != nil {
		t.Fatal(err)
	}
	if second["flags"].(map[string]any)["imported"] != true {
		t.Fatal("a change to one answer's constant reached the next answer")
	}
}

func deepCopy(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConfig(t *testing.T) {
	rule := func(r string) string {
		return `{"mappings": [{"from": "remote", "to": "local", "rules": [` + r + `]}]}`
	}
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "no rules", config: `{"mappings": [{"from": "local", "to": "oidc", "rules": []}]}`},
		{name: "a null constant", config: rule(`{"to": "x", "value": null}`)},
		{name: "no mappings passes everything through", config: `{}`},
		{name: "unknown top-level field", config: `{"mappings": [], "strict": true}`, wantErr: "config.strict: unknown field"},
		{name: "unknown rule field", config: rule(`{"form": "a", "to": "b"}`), wantErr: "config.mappings[0].rules[0].form: unknown field"},
		{name: "unknown dialect", config: `{"mappings": [{"from": "ldap", "to": "local", "rules": []}]}`, wantErr: `config.mappings[0].from: must be one of "local", "oidc", "scim", "saml", "remote", "backend_jwt"`},
		{name: "rule without target", config: rule(`{"from": "a"}`), wantErr: "config.mappings[0].rules[0].to: is required"},
		{name: "rule without source", config: rule(`{"to": "a"}`), wantErr: "config.mappings[0].rules[0]: must set exactly one of from, value and template"},
		{name: "rule with two sources", config: rule(`{"to": "a", "from": "b", "value": 1}`), wantErr: "config.mappings[0].rules[0]: must set exactly one of from, value and template"},
		{name: "copy without from", config: rule(`{"to": "a", "value": 1, "copy": true}`), wantErr: "config.mappings[0].rules[0]: properties 'from' required, if 'copy' exists"},
		{name: "unclosed placeholder", config: rule(`{"to": "a", "template": "{given_name"}`), wantErr: "config.mappings[0].rules[0].template: the '{' at byte 0 is not closed by a '}'"},
		{name: "stray closing brace", config: rule(`{"to": "a", "template": "a}b"}`), wantErr: "config.mappings[0].rules[0].template: the '}' at byte 1 closes nothing"},
		{name: "empty placeholder", config: rule(`{"to": "a", "template": "x{}"}`), wantErr: "config.mappings[0].rules[0].template: the placeholder at byte 1 names no claim"},
		{
			name:    "a mapping hidden by an earlier one",
			config:  `{"mappings": [{"from": "local", "to": "oidc", "rules": []}, {"from": "local", "to": "oidc", "rules": []}]}`,
			wantErr: "config.mappings[1]: covers the same from, to and issuer as mappings[0]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.config)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *extension.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want a config error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestREADMEExamples loads every JSON example of the README, so that the
// documentation cannot drift from the schema, and maps with each.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			inst, err := load(t, string(ex[1]))
			if err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
			if _, err := mapClaims(t.Context(), inst, abi.MapRequest{From: abi.DialectLocal, To: abi.DialectBackendJWT, Claims: map[string]any{"sub": "u-42"}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func BenchmarkMap(b *testing.B) {
	inst := mustLoad(b, remoteToLocal)
	m, _ := extension.As[claims.Mapper](inst)
	req := abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Claims: map[string]any{
		"http://wso2.org/claims/emailaddress": "alice@example.com",
		"sub":                                 "u-42",
		"given_name":                          "Alice",
		"family_name":                         "Liddell",
		"age":                                 float64(30),
		"verified":                            true,
		"hd":                                  "example.com",
		"locale":                              "en-GB",
	}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Map(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
