package cli

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseApplyDocs(t *testing.T) {
	env := lookupFrom(map[string]string{"SECRET": "s3cret", "EMPTY": ""})
	docs, err := parseApplyDocs([]byte(`
apiVersion: latch/v1
kind: Client
metadata: {name: web}
spec:
  client_secret: ${SECRET}
  redirect_uris: [https://app.example/cb]
  public: false
  settings:
    authentication: {flow: mfa}
    note: "costs $${PRICE}"
    n: 3
---
# an empty document is skipped
---
apiVersion: latch/v1
kind: Flow
metadata: {name: mfa, tenant: acme}
spec:
  steps:
    - options: [password]
    - {options: [totp], subject_step: true}
---
apiVersion: latch/v1
kind: Tenant
metadata: {name: acme}
`), "default", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 3 {
		t.Fatalf("got %d documents, want 3", len(docs))
	}
	c := docs[0]
	if c.Index != 1 || c.Kind != kindClient || c.Name != "web" || c.Tenant != "default" || c.Spec["client_secret"] != "s3cret" {
		t.Errorf("client: %+v", c)
	}
	settings := c.Spec["settings"].(map[string]any)
	if settings["note"] != "costs ${PRICE}" || settings["n"] != 3.0 || settings["authentication"].(map[string]any)["flow"] != "mfa" {
		t.Errorf("client settings: %#v", settings)
	}
	f := docs[1]
	steps := f.Spec["steps"].([]any)
	if f.Index != 3 || f.Tenant != "acme" || len(steps) != 2 || steps[1].(map[string]any)["subject_step"] != true {
		t.Errorf("flow: %+v", f)
	}
	if docs[2].Tenant != "" {
		t.Errorf("a tenant document has tenant %q", docs[2].Tenant)
	}
}

func TestParseApplyDocsErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"api version":     {"apiVersion: v2\nkind: Role\nmetadata: {name: r}\n", "document 1 (line 1): apiVersion: must be latch/v1"},
		"no metadata":     {"apiVersion: latch/v1\nkind: Role\n", "metadata: is required"},
		"empty name":      {"apiVersion: latch/v1\nkind: Role\nmetadata: {name: ''}\n", "metadata.name: is required"},
		"tenant's tenant": {"apiVersion: latch/v1\nkind: Tenant\nmetadata: {name: a, tenant: b}\n", "metadata.tenant: a Tenant belongs to no tenant"},
		"top field":       {"apiVersion: latch/v1\nkind: Role\nmetadata: {name: r}\nstatus: {}\n", "(line 4): status: unknown field"},
		"spec list":       {"apiVersion: latch/v1\nkind: Role\nmetadata: {name: r}\nspec: [1]\n", "spec: must be a mapping"},
		"bool as string":  {"apiVersion: latch/v1\nkind: User\nmetadata: {name: u}\nspec: {enabled: 'yes'}\n", "spec.enabled: must be a boolean"},
		"step field":      {"apiVersion: latch/v1\nkind: Flow\nmetadata: {name: f}\nspec:\n  steps:\n    - {option: [a]}\n", "(line 6): spec.steps[0].option: unknown field for a step"},
		"flow no steps":   {"apiVersion: latch/v1\nkind: Flow\nmetadata: {name: f}\nspec: {script: x}\n", "spec.steps: is required"},
		"bundle no file":  {"apiVersion: latch/v1\nkind: Bundle\nmetadata: {name: b}\nspec: {grants: [kv]}\n", "spec.file: is required"},
		"alias":           {"apiVersion: latch/v1\nkind: Group\nmetadata: {name: g}\nspec:\n  attributes: {a: &x 1, b: *x}\n", "aliases are not accepted"},
		"unset env":       {"apiVersion: latch/v1\nkind: Group\nmetadata: {name: g}\nspec: {description: '${NOPE} ${NADA}'}\n", "environment variable NOPE, NADA is not set"},
		"not a mapping":   {"- a\n- b\n", "document 1 (line 1): a document must be a mapping"},
		"syntax":          {"a: [\n", "not valid YAML"},
	} {
		_, err := parseApplyDocs([]byte(tc.in), "default", lookupFrom(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, tc.want)
		}
		var de *docError
		if name != "syntax" && !errors.As(err, &de) {
			t.Errorf("%s: %v is not a *docError", name, err)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	env := lookupFrom(map[string]string{"A": "1", "B": "${A}"})
	for in, want := range map[string]string{
		"${A}":       "1",
		"x${A}y${A}": "x1y1",
		"$${A}":      "${A}",
		"${B}":       "${A}", // values are not expanded again
		"$A ${ A }":  "$A ${ A }",
		"$$$${A}":    "$$${A}",
	} {
		got, err := expandEnv(in, env)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// What export escapes, apply reads back as it was.
	for _, s := range []string{"${A}", "$${A}", "cost: $5", "${", "a$${b}c"} {
		got, err := expandEnv(escapeEnv(s).(string), env)
		if err != nil || got != s {
			t.Errorf("round trip of %q: %q, %v", s, got, err)
		}
	}
}

func TestSameJSON(t *testing.T) {
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{[]any{}, nil, true},
		{false, nil, true},
		{"", nil, true},
		{map[string]any{"n": 3.0}, map[string]any{"n": 3}, true},
		{[]any{"a", "b"}, []string{"a", "b"}, true},
		{[]any{"b", "a"}, []string{"a", "b"}, false},
		{true, nil, false},
	} {
		if got := sameJSON(tc.a, tc.b); got != tc.want {
			t.Errorf("sameJSON(%#v, %#v) = %v", tc.a, tc.b, got)
		}
	}
}

// FuzzParseApplyDocs feeds arbitrary files to the parser of `latch
// apply`: it never panics, and what it accepts is well formed.
func FuzzParseApplyDocs(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: latch/v1\nkind: Flow\nmetadata: {name: f}\nspec:\n  steps: [{options: [password]}]\n  script: '${X}'\n",
		"apiVersion: latch/v1\nkind: Client\nmetadata: {name: c, tenant: t}\nspec: {settings: {a: [1, {b: null}]}, redirect_uris: []}\n---\n---\n",
		"apiVersion: latch/v1\nkind: Bundle\nmetadata: {name: b}\nspec: {file: x.tar.gz, config: {k: v}, enabled: true}\n",
		"a: &a [*a]\n", "kind: [\n", "---\n- 1\n", "apiVersion: latch/v1\nkind: User\nmetadata: {name: u}\nspec: {groups: [a, 1, true]}\n",
		"\t", "{", "a: b: c", "? [a]\n: b\n",
	} {
		f.Add(seed)
	}
	env := lookupFrom(map[string]string{"X": "x"})
	f.Fuzz(func(t *testing.T, in string) {
		docs, err := parseApplyDocs([]byte(in), "default", env)
		if err != nil {
			if docs != nil {
				t.Fatalf("documents with an error: %v", err)
			}
			return
		}
		for _, d := range docs {
			if d.Name == "" || d.Spec == nil || !strings.HasPrefix(d.String(), "document ") {
				t.Fatalf("accepted a malformed document: %+v", d)
			}
			if (d.Kind == kindTenant || d.Kind == kindBundle) != (d.Tenant == "") {
				t.Fatalf("%s with tenant %q", d.Kind, d.Tenant)
			}
		}
	})
}

// TestApplyDocExamples parses every YAML example of docs/apply.md, so the
// guide cannot show a file apply refuses.
func TestApplyDocExamples(t *testing.T) {
	raw, err := os.ReadFile("../../../../docs/apply.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(raw), "```yaml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("docs/apply.md has no YAML example")
	}
	env := lookupFrom(map[string]string{"ALICE_PASSWORD": "pw", "PORTAL_SECRET": "secret"})
	for i, b := range blocks {
		body, _, _ := strings.Cut(b, "```")
		docs, err := parseApplyDocs([]byte(body), "default", env)
		if err != nil || len(docs) == 0 {
			t.Errorf("example %d: %d documents, %v", i+1, len(docs), err)
		}
	}
}
