package extension_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
)

func mustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("did not panic, want a panic mentioning %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not mention %q", msg, want)
		}
	}()
	fn()
}

func TestRegisterPanics(t *testing.T) {
	newAuthn := func() any { return new(fakeAuthn) }
	tests := []struct {
		name string
		mod  extension.Module
		want string
	}{
		{"empty id", extension.Module{New: newAuthn}, "empty id"},
		{"uppercase id", extension.Module{ID: "authn.Password", New: newAuthn}, "segment"},
		{"no name", extension.Module{ID: "authn", New: newAuthn}, "want <namespace>.<name>"},
		{"empty name", extension.Module{ID: "authn.", New: newAuthn}, "segment"},
		{"hyphen", extension.Module{ID: "authn.pass-word", New: newAuthn}, "segment"},
		{"unknown namespace", extension.Module{ID: "auth.password", New: newAuthn}, "unknown namespace"},
		{"duplicate", extension.Module{ID: "authn.fake", New: newAuthn}, "already registered"},
		{"kind mismatch", extension.Module{ID: "authn.other", Kind: extension.KindGrant, New: newAuthn}, "does not match"},
		{"nil New", extension.Module{ID: "authn.other"}, "New is nil"},
		{"New returns nil", extension.Module{ID: "authn.other", New: func() any { return nil }}, "returned nil"},
		{"wrong interface", extension.Module{ID: "grant.other", New: newAuthn}, "does not implement the grant interface"},
		{"bad schema", extension.Module{ID: "authn.other", New: newAuthn, ConfigSchema: []byte(`{"type": 7}`)}, "compiling config schema"},
		{"schema with external ref", extension.Module{ID: "authn.other", New: newAuthn, ConfigSchema: []byte(`{"$ref": "file:///etc/passwd"}`)}, "config schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRegistry(&journal{})
			mustPanic(t, tt.want, func() { r.Register(tt.mod) })
		})
	}
}

func TestModulesSorted(t *testing.T) {
	r := newTestRegistry(&journal{})
	var ids []extension.ID
	for _, m := range r.Modules() {
		ids = append(ids, m.ID)
	}
	want := []extension.ID{"authn.fake", "grant.plain", "userstore.fake"}
	if !slices.Equal(ids, want) {
		t.Fatalf("Modules() = %v, want %v", ids, want)
	}
	got := r.ModulesOf(extension.KindUserStore)
	if len(got) != 1 || got[0].ID != "userstore.fake" || got[0].Kind != extension.KindUserStore {
		t.Fatalf("ModulesOf(userstore) = %+v", got)
	}
	if _, ok := r.Module("authn.fake"); !ok {
		t.Fatal("Module(authn.fake) not found")
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		kind   extension.Kind
		prefix string
	}{
		{"authn.password", true, extension.KindAuthenticator, "password"},
		{"grant.client_credentials", true, extension.KindGrant, "client_credentials"},
		{"userstore.sql", true, extension.KindUserStore, "sql"},
		{"claims.rename", true, extension.KindClaims, "rename"},
		{"throttle.local", true, extension.KindThrottler, "local"},
		{"provision.webhook", true, extension.KindProvisioner, "webhook"},
		{"authn.oidc.google", true, extension.KindAuthenticator, "oidc.google"},
		{"", false, "", ""},
		{"authn", false, "", ""},
		{"authn..x", false, "", ""},
		{"authn.9lives", false, "", ""},
		{"authn.x.", false, "", ""},
		{"AUTHN.x", false, "", ""},
		{"authenticator.x", false, "", ""},
		{"authn.x y", false, "", ""},
		{"authn." + strings.Repeat("x", 130), false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, err := extension.ParseID(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseID(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if !tt.ok {
				if !errors.Is(err, extension.ErrInvalidID) {
					t.Fatalf("error %v does not wrap ErrInvalidID", err)
				}
				return
			}
			if id.Kind() != tt.kind || id.Name() != tt.prefix {
				t.Fatalf("ParseID(%q) kind=%q name=%q, want %q %q", tt.in, id.Kind(), id.Name(), tt.kind, tt.prefix)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"authn.password", "grant.x.y", "authn", "", "userstore.", "claims.a_b9", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := extension.ParseID(s)
		if err != nil {
			if !errors.Is(err, extension.ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			return
		}
		if string(id) != s || !id.Kind().Valid() || id.Kind().Namespace() != id.Namespace() {
			t.Fatalf("ParseID(%q) accepted an id with kind %q", s, id.Kind())
		}
		if strings.ToLower(s) != s || len(s) > extension.MaxIDLength {
			t.Fatalf("ParseID(%q) accepted a non-lowercase or long id", s)
		}
	})
}

func TestConfigDecode(t *testing.T) {
	tests := []struct {
		name   string
		module extension.ID
		config string
		want   []string // the ConfigError's field problems; nil means valid
	}{
		{"valid", "authn.fake", `{"max_attempts": 3, "retry": {"backoff": "linear"}, "servers": [{"url": "ldap://a"}]}`, nil},
		{"empty", "authn.fake", ``, nil},
		{"null", "authn.fake", `null`, nil},
		{"self-decoding field takes anything", "authn.fake", `{"extra": {"anything": [1, 2]}}`, nil},
		{"map values take any key", "authn.fake", `{"labels": {"x": "y"}}`, nil},
		{"unknown top-level field", "authn.fake", `{"max_attempts": 2, "bogus": 1}`, []string{"config.bogus: unknown field"}},
		{"case-insensitive match is known", "authn.fake", `{"Max_Attempts": 2}`, nil},
		{"unknown nested field", "authn.fake", `{"retry": {"backoff": "linear", "jitter": true}}`, []string{"config.retry.jitter: unknown field"}},
		{"unknown field in array element", "authn.fake", `{"servers": [{"url": "a"}, {"url": "b", "port": 1}]}`, []string{"config.servers[1].port: unknown field"}},
		{"schema minimum", "authn.fake", `{"max_attempts": 0}`, []string{"config.max_attempts: must be >= 1"}},
		{"schema maximum", "authn.fake", `{"max_attempts": 11}`, []string{"config.max_attempts: must be <= 10"}},
		{"schema type", "authn.fake", `{"max_attempts": "three"}`, []string{"config.max_attempts: must be of type integer, got string"}},
		{"schema required", "authn.fake", `{"retry": {}}`, []string{"config.retry.backoff: is required"}},
		{"schema enum", "authn.fake", `{"retry": {"backoff": "random"}}`, []string{`config.retry.backoff: must be one of "linear", "exponential"`}},
		{"schema in array", "authn.fake", `{"servers": [{"url": "a"}, {"url": ""}]}`, []string{"config.servers[1].url: must be at least 1 characters long"}},
		{"several problems sorted", "authn.fake", `{"retry": {}, "max_attempts": 0}`, []string{"config.max_attempts: must be >= 1", "config.retry.backoff: is required"}},
		{"go type error without schema", "userstore.fake", `{"fail_close": "yes"}`, []string{"config.fail_close: must be a boolean, got string"}},
		{"unknown field without schema", "userstore.fake", `{"j": 1}`, []string{"config.j: unknown field"}},
		{"malformed json", "userstore.fake", `{"label": `, []string{"config: malformed JSON"}},
		{"trailing data", "userstore.fake", `{"label": "a"} {"label": "b"}`, []string{"config: malformed JSON"}},
		{"not an object", "userstore.fake", `[1]`, []string{"config: must be an object, got array"}},
		{"value takes no config", "grant.plain", `{"a": 1}`, []string{"config: this extension takes no configuration"}},
		{"value takes empty config", "grant.plain", `{}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRegistry(&journal{})
			set, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: tt.module, Config: json.RawMessage(tt.config)}}, extension.LoadOptions{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				_ = set.Close(t.Context())
				return
			}
			var ce *extension.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Load error %v is not a *ConfigError", err)
			}
			if len(ce.Fields) != len(tt.want) {
				t.Fatalf("problems %q, want %q", ce.Fields, tt.want)
			}
			for i, w := range tt.want {
				if got := ce.Fields[i].String(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, w)
				}
			}
			if !errors.Is(err, fault.InvalidRequest) {
				t.Errorf("error %v does not match fault.InvalidRequest", err)
			}
			if f := fault.From(err); f.Field != ce.Fields[0].Path {
				t.Errorf("fault field = %q, want %q", f.Field, ce.Fields[0].Path)
			}
			if !strings.Contains(err.Error(), `loading extension "`+string(tt.module)+`"`) {
				t.Errorf("error %q does not name the instance", err)
			}
		})
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"max_attempts": 0}`, `{"retry": {"backoff": "x", "y": 1}}`, `{"servers": [{"url": 1}]}`, `[`, `"x"`, `{"extra": null}`} {
		f.Add([]byte(s))
	}
	r := newTestRegistry(&journal{})
	f.Fuzz(func(t *testing.T, cfg []byte) {
		set, err := r.Load(context.Background(), []extension.InstanceConfig{{Module: "authn.fake", Config: cfg}}, extension.LoadOptions{})
		if err != nil {
			var ce *extension.ConfigError
			if !errors.As(err, &ce) || len(ce.Fields) == 0 {
				t.Fatalf("config error %v is not a non-empty *ConfigError", err)
			}
			for _, fe := range ce.Fields {
				if !strings.HasPrefix(fe.Path, "config") {
					t.Fatalf("path %q does not start at config", fe.Path)
				}
			}
			return
		}
		_ = set.Close(context.Background())
	})
}
