package extension_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
)

// closeOnCleanup closes set when t ends and fails t if Close reports an
// error. It uses a fresh context: t.Context() is already done by then.
func closeOnCleanup(t testing.TB, set *extension.Instances) {
	t.Helper()
	t.Cleanup(func() {
		if err := set.Close(context.Background()); err != nil {
			t.Errorf("closing instances: %v", err)
		}
	})
}

func store(name, cfg string) extension.InstanceConfig {
	if cfg == "" {
		cfg = "{}"
	}
	return extension.InstanceConfig{Name: name, Module: "userstore.fake", Config: json.RawMessage(cfg)}
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name        string
		configs     []extension.InstanceConfig
		wantErr     string // empty: Load succeeds
		wantJournal []string
	}{
		{
			name:    "load then close in reverse order",
			configs: []extension.InstanceConfig{store("a", ""), store("b", "")},
			wantJournal: []string{
				"provision a", "validate a", "provision b", "validate b",
				"close b", "close a",
			},
		},
		{
			name:    "failed provision is cleaned up, earlier instances too",
			configs: []extension.InstanceConfig{store("a", ""), store("b", `{"fail_provision": true}`), store("c", "")},
			wantErr: `loading extension "b" (userstore.fake): provisioning: plugin/userstore.fake: calling configure on "b": fake failure`,
			wantJournal: []string{
				"provision a", "validate a", "provision b",
				"close b", "close a",
			},
		},
		{
			name:    "failed validate is cleaned up",
			configs: []extension.InstanceConfig{store("a", `{"fail_validate": true}`)},
			wantErr: "validating",
			wantJournal: []string{
				"provision a", "validate a", "close a",
			},
		},
		{
			name:        "undecodable config is not provisioned nor cleaned up",
			configs:     []extension.InstanceConfig{store("a", ""), store("b", `{"nope": 1}`)},
			wantErr:     `loading extension "b" (userstore.fake): decoding config: config.nope: unknown field`,
			wantJournal: []string{"provision a", "validate a", "close a"},
		},
		{
			name:        "unknown module",
			configs:     []extension.InstanceConfig{store("a", ""), {Name: "x", Module: "authn.nope"}},
			wantErr:     `unknown module "authn.nope"`,
			wantJournal: []string{"provision a", "validate a", "close a"},
		},
		{
			name:        "duplicate instance name",
			configs:     []extension.InstanceConfig{store("a", ""), store("a", "")},
			wantErr:     "instance name already used",
			wantJournal: []string{"provision a", "validate a", "close a"},
		},
		{
			name:        "invalid instance name",
			configs:     []extension.InstanceConfig{store("Corp LDAP", "")},
			wantErr:     "invalid instance name",
			wantJournal: nil,
		},
		{
			name:        "cleanup error is reported beside the load error",
			configs:     []extension.InstanceConfig{store("a", `{"fail_close": true}`), store("b", `{"fail_provision": true}`)},
			wantErr:     `cleaning up extension "a" (userstore.fake): plugin/userstore.fake: calling close on "a": fake failure`,
			wantJournal: []string{"provision a", "validate a", "provision b", "close b", "close a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			r := newTestRegistry(j)
			set, err := r.Load(t.Context(), tt.configs, extension.LoadOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if err := set.Close(t.Context()); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if err := set.Close(t.Context()); err != nil {
					t.Fatalf("second Close: %v", err)
				}
			}
			if got := j.get(); !slices.Equal(got, tt.wantJournal) {
				t.Fatalf("journal = %q\nwant      %q", got, tt.wantJournal)
			}
		})
	}
}

func TestLoadCanceled(t *testing.T) {
	j := &journal{}
	r := newTestRegistry(j)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Load(ctx, []extension.InstanceConfig{store("a", "")}, extension.LoadOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Load error = %v, want context.Canceled", err)
	}
	if len(j.get()) != 0 {
		t.Fatalf("journal = %q, want nothing run", j.get())
	}
}

// TestLoadCanceledMidway checks that when ctx ends between two instances,
// the ones already built are closed and their close errors are reported
// alongside the cancellation.
func TestLoadCanceledMidway(t *testing.T) {
	r := extension.NewRegistry()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	j := &journal{}
	r.Register(extension.Module{ID: "userstore.cancel", New: func() any { return &cancelStore{j: j, cancel: cancel} }})
	_, err := r.Load(ctx, []extension.InstanceConfig{
		{Name: "a", Module: "userstore.cancel"}, {Name: "b", Module: "userstore.cancel"},
	}, extension.LoadOptions{})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFake) {
		t.Fatalf("Load error = %v, want context.Canceled and the close error", err)
	}
	if got, want := j.get(), []string{"provision a", "close a"}; !slices.Equal(got, want) {
		t.Fatalf("journal = %q, want %q", got, want)
	}
}

// cancelStore is a user store whose Provision ends the load context and
// whose Close fails.
type cancelStore struct {
	depStore
	j      *journal
	cancel context.CancelFunc
	name   string
}

func (c *cancelStore) Provision(_ context.Context, env extension.Env) error {
	c.name = env.Name
	c.j.add("provision " + env.Name)
	c.cancel()
	return nil
}

func (c *cancelStore) Close(context.Context) error {
	c.j.add("close " + c.name)
	return errFake
}

func TestDepsAndAccessors(t *testing.T) {
	r := extension.NewRegistry()
	var got any
	r.Register(extension.Module{ID: "userstore.deps", New: func() any {
		return &depStore{seen: &got}
	}})
	set, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: "userstore.deps"}},
		extension.LoadOptions{Deps: map[string]any{"greeting": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, set)
	if got != "hello" {
		t.Fatalf("dependency = %v, want hello", got)
	}
	inst, ok := set.Get("userstore.deps")
	if !ok {
		t.Fatal("instance named after its module not found")
	}
	if inst.Kind() != extension.KindUserStore || inst.ID() != "userstore.deps" || string(inst.Config()) != "{}" {
		t.Fatalf("accessors: kind %q id %q config %s", inst.Kind(), inst.ID(), inst.Config())
	}
	if _, ok := extension.As[extension.Cleaner](inst); ok {
		t.Fatal("As[Cleaner] = true for a store without Close")
	}
}

// depStore is a bare user store that records the dependency it was given.
type depStore struct {
	seen *any
}

func (d *depStore) GetUser(context.Context, abi.GetUserRequest) (abi.User, error) {
	return abi.User{}, nil
}

func (d *depStore) FindUsers(context.Context, abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	return abi.FindUsersResponse{}, nil
}

func (d *depStore) AuthenticateUser(context.Context, abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
}

func (d *depStore) Provision(_ context.Context, env extension.Env) error {
	*d.seen, _ = env.Dep("greeting")
	return nil
}

var (
	_ extension.Provisioner = (*cancelStore)(nil)
	_ extension.Cleaner     = (*cancelStore)(nil)
)

func TestEnablement(t *testing.T) {
	j := &journal{}
	r := newTestRegistry(j)
	configs := []extension.InstanceConfig{store("sql", ""), store("ldap", ""), store("rest", ""), {Name: "pw", Module: "authn.fake"}}
	tests := []struct {
		name    string
		e       extension.Enablement
		tenant  string
		kind    extension.Kind
		want    []string
		wantErr string
	}{
		{name: "nothing set: every instance of the kind in load order", tenant: "acme", kind: extension.KindUserStore, want: []string{"sql", "ldap", "rest"}},
		{name: "nothing of the kind loaded", tenant: "acme", kind: extension.KindThrottler, want: nil},
		{
			name:   "default list applies to tenants that set nothing",
			e:      extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"ldap", "sql"}}},
			tenant: "acme", kind: extension.KindUserStore, want: []string{"ldap", "sql"},
		},
		{
			name: "tenant list in its own order",
			e: extension.Enablement{
				Default: map[extension.Kind][]string{extension.KindUserStore: {"sql"}},
				Tenants: map[string]map[extension.Kind][]string{"acme": {extension.KindUserStore: {"rest", "ldap"}}},
			},
			tenant: "acme", kind: extension.KindUserStore, want: []string{"rest", "ldap"},
		},
		{
			name: "tenant without a list for this kind falls back to the default",
			e: extension.Enablement{
				Default: map[extension.Kind][]string{extension.KindUserStore: {"sql"}},
				Tenants: map[string]map[extension.Kind][]string{"acme": {extension.KindAuthenticator: {"pw"}}},
			},
			tenant: "acme", kind: extension.KindUserStore, want: []string{"sql"},
		},
		{
			name:   "an empty tenant list enables nothing",
			e:      extension.Enablement{Tenants: map[string]map[extension.Kind][]string{"acme": {extension.KindUserStore: {}}}},
			tenant: "acme", kind: extension.KindUserStore, want: nil,
		},
		{
			name:    "unknown instance",
			e:       extension.Enablement{Tenants: map[string]map[extension.Kind][]string{"acme": {extension.KindUserStore: {"sql", "ad"}}}},
			wantErr: `enablement.tenants.acme.userstore[1]: unknown instance "ad"`,
		},
		{
			name:    "wrong kind",
			e:       extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"pw"}}},
			wantErr: `enablement.default.userstore[0]: instance "pw" is a authenticator, not a userstore`,
		},
		{
			name:    "listed twice",
			e:       extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"sql", "sql"}}},
			wantErr: `enablement.default.userstore[1]: instance "sql" listed twice`,
		},
		{
			name:    "unknown kind",
			e:       extension.Enablement{Default: map[extension.Kind][]string{"policy": {"sql"}}},
			wantErr: `enablement.default.policy: unknown kind "policy"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := r.Load(t.Context(), configs, extension.LoadOptions{Enablement: tt.e})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, set)
			var got []string
			for _, i := range set.Enabled(tt.tenant, tt.kind) {
				got = append(got, i.Name())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Enabled(%q, %q) = %q, want %q", tt.tenant, tt.kind, got, tt.want)
			}
		})
	}
}

func TestSetEnablementKeepsOldOnError(t *testing.T) {
	r := newTestRegistry(&journal{})
	set, err := r.Load(t.Context(), []extension.InstanceConfig{store("a", ""), store("b", "")},
		extension.LoadOptions{Enablement: extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"b"}}}})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, set)
	if err := set.SetEnablement(extension.Enablement{Default: map[extension.Kind][]string{extension.KindUserStore: {"zz"}}}); err == nil {
		t.Fatal("SetEnablement accepted an unknown instance")
	}
	if got := set.Enabled("t", extension.KindUserStore); len(got) != 1 || got[0].Name() != "b" {
		t.Fatalf("a refused enablement replaced the old one: %v", got)
	}
}

func TestHealth(t *testing.T) {
	r := newTestRegistry(&journal{})
	set, err := r.Load(t.Context(), []extension.InstanceConfig{
		store("up", ""), store("down", `{"unhealthy": true}`), {Name: "g", Module: "grant.plain"},
	}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, set)
	sts, err := set.Health(t.Context())
	if !errors.Is(err, errFake) || !strings.Contains(err.Error(), `plugin/userstore.fake: calling health on "down"`) {
		t.Fatalf("Health error = %v", err)
	}
	want := map[string]bool{"up": true, "down": false, "g": true}
	if len(sts) != 3 {
		t.Fatalf("got %d statuses, want 3", len(sts))
	}
	for _, st := range sts {
		if (st.Err == nil) != want[st.Name] {
			t.Errorf("status of %q: err = %v", st.Name, st.Err)
		}
	}
}
