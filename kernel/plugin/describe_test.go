package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/userstore"
)

func validDescription() abi.Description {
	return abi.Description{
		ABIVersion:   abi.Version,
		Name:         "acme-otp",
		Version:      "1.4.0",
		Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "sms_otp"}, {Kind: abi.KindUserStore, Name: "directory"}},
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP, Hosts: []string{"sms.example.com"}}, {Name: abi.CapabilityRandom}},
		ConfigSchema: json.RawMessage(`{"type":"object","required":["sender"]}`),
	}
}

func TestCheckDescription(t *testing.T) {
	granted := []string{abi.CapabilityHTTP, abi.CapabilityRandom}
	tests := []struct {
		name   string
		mutate func(d *abi.Description)
		grants []string
		want   []string // each must appear; none: accepted
		wantIs error
	}{
		{name: "valid", mutate: func(*abi.Description) {}},
		{name: "no schema", mutate: func(d *abi.Description) { d.ConfigSchema = nil }},
		{name: "dotted entry name", mutate: func(d *abi.Description) { d.Extensions[0].Name = "oidc.google" }},
		{name: "same name, other kinds", mutate: func(d *abi.Description) { d.Extensions[1].Name = "sms_otp" }},
		{name: "wrong ABI version", mutate: func(d *abi.Description) { d.ABIVersion = "2" },
			want: []string{`module acme-otp: invalid module description: it speaks ABI version "2", this host speaks "1"`}, wantIs: plugin.ErrInvalidDescription},
		{name: "no ABI version", mutate: func(d *abi.Description) { d.ABIVersion = "" }, want: []string{`ABI version ""`}},
		{name: "no extension", mutate: func(d *abi.Description) { d.Extensions = nil }, want: []string{"declares no extension"}},
		{name: "unknown kind", mutate: func(d *abi.Description) { d.Extensions[1].Kind = "teleporter" },
			want: []string{`extension 1 ("directory") has unknown kind "teleporter"`}, wantIs: plugin.ErrInvalidDescription},
		{name: "upper-case name", mutate: func(d *abi.Description) { d.Extensions[0].Name = "SMS" }, want: []string{`name "SMS"`, "must match"}},
		{name: "dashed name", mutate: func(d *abi.Description) { d.Extensions[0].Name = "sms-otp" }, want: []string{`name "sms-otp"`}},
		{name: "empty name", mutate: func(d *abi.Description) { d.Extensions[0].Name = "" }, want: []string{`extension 0: name ""`}},
		{name: "duplicate entry", mutate: func(d *abi.Description) { d.Extensions[1] = d.Extensions[0] }, want: []string{"extensions 0 and 1 are both authn.sms_otp"}},
		{name: "ungranted capability named with its hosts", mutate: func(*abi.Description) {}, grants: []string{abi.CapabilityRandom},
			want: []string{`module acme-otp requests capability "http" (hosts [sms.example.com]) which was not granted`}, wantIs: plugin.ErrNotGranted},
		{name: "ungranted capability without hosts", mutate: func(*abi.Description) {}, grants: []string{abi.CapabilityHTTP},
			want: []string{`module acme-otp requests capability "random" which was not granted`}, wantIs: plugin.ErrNotGranted},
		{name: "nothing granted: every capability named", mutate: func(*abi.Description) {}, grants: []string{},
			want: []string{`capability "http"`, `capability "random"`}},
		{name: "unknown capability", mutate: func(d *abi.Description) {
			d.Capabilities = append(d.Capabilities, abi.CapabilityRequest{Name: "teleport"})
		},
			want: []string{`requests capability "teleport", which this host does not know`}, wantIs: plugin.ErrInvalidDescription},
		{name: "hosts on another capability", mutate: func(d *abi.Description) { d.Capabilities[1].Hosts = []string{"x.example.com"} },
			want: []string{`capability "random" takes no hosts`}},
		{name: "schema not JSON", mutate: func(d *abi.Description) { d.ConfigSchema = json.RawMessage(`{"type":`) }, want: []string{"config schema: not valid JSON"}},
		{name: "schema that does not compile", mutate: func(d *abi.Description) { d.ConfigSchema = json.RawMessage(`{"type":5}`) }, want: []string{"config schema: compiling"}},
		{name: "schema referring to another document", mutate: func(d *abi.Description) { d.ConfigSchema = json.RawMessage(`{"$ref":"https://example.com/s.json"}`) },
			want: []string{"config schema"}},
		{name: "unnamed module", mutate: func(d *abi.Description) { d.Name, d.ABIVersion = "", "0" }, want: []string{"module (unnamed): "}},
		{name: "every problem reported", mutate: func(d *abi.Description) {
			d.ABIVersion = "9"
			d.Extensions[0].Kind = "x"
			d.ConfigSchema = json.RawMessage(`[`)
		}, want: []string{`ABI version "9"`, `unknown kind "x"`, "not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDescription()
			tt.mutate(&d)
			grants := granted
			if tt.grants != nil {
				grants = tt.grants
			}
			err := plugin.CheckDescription(d, grants)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("CheckDescription = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckDescription accepted the description")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not match %v", err, tt.wantIs)
			}
		})
	}
}

// fakeTransport answers calls with answer, recording the last call.
type fakeTransport struct {
	mu     sync.Mutex
	calls  []abi.Call
	answer func(call abi.Call) []byte
}

func (f *fakeTransport) Call(ctx context.Context, payload []byte) ([]byte, error) {
	var c abi.Call
	if err := c.UnmarshalWire(payload); err != nil {
		return nil, fault.Internal.WithCause(err)
	}
	c.Payload = bytes.Clone(c.Payload)
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	return f.answer(c), nil
}

func (f *fakeTransport) ops() []abi.OpCode {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]abi.OpCode, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Op
	}
	return out
}

func encode(tb testing.TB, m abi.Message) []byte {
	tb.Helper()
	b, err := abi.AppendReply(nil, m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func replyError(tb testing.TB, code, msg string) []byte {
	tb.Helper()
	b, err := (&abi.Reply{Error: &abi.Error{Code: code, Message: msg}}).AppendWire(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestUserStoreOverAFakeTransport checks, without WASM, what goes on the
// wire (the entry, the configuration in every request) and how answers
// come back, for the kind with the most operations.
func TestUserStoreOverAFakeTransport(t *testing.T) {
	desc := validDescription()
	desc.ConfigSchema = nil
	ft := &fakeTransport{}
	ft.answer = func(c abi.Call) []byte {
		switch c.Op {
		case abi.OpCodeConfigure, abi.OpCodeClose:
			return nil
		case abi.OpCodeGetUser:
			var req abi.GetUserRequest
			if err := req.UnmarshalWire(c.Payload); err != nil {
				t.Errorf("decoding get_user: %v", err)
			}
			if c.Entry != 1 || string(req.Config) != `{"base":"ou=people"}` {
				t.Errorf("get_user went to entry %d with config %s", c.Entry, req.Config)
			}
			if req.ID == "missing" {
				return encode(t, &abi.UserResponse{Error: &abi.Error{Code: abi.CodeNotFound, Message: "no such user"}})
			}
			return encode(t, &abi.UserResponse{User: abi.User{ID: req.ID, Username: "alice", Enabled: true}})
		case abi.OpCodeFindUsers:
			return encode(t, &abi.FindUsersResponse{Error: &abi.Error{Code: abi.CodeUnavailable, Message: "directory down"}})
		case abi.OpCodeDeleteUser:
			return encode(t, &abi.DeleteUserResponse{})
		}
		return replyError(t, abi.CodeUnsupported, "read-only")
	}
	mods, err := plugin.Modules("acme", desc, ft)
	if err != nil {
		t.Fatal(err)
	}
	reg := extension.NewRegistry()
	for _, m := range mods {
		reg.Register(m)
	}
	ctx := context.Background()
	set, err := reg.Load(ctx, []extension.InstanceConfig{{Module: "userstore.directory", Config: json.RawMessage(`{"base":"ou=people"}`)}}, extension.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inst := instance(t, set, "userstore.directory")
	s, _ := extension.As[userstore.Store](inst)

	u, err := s.GetUser(ctx, abi.GetUserRequest{Tenant: "acme", ID: "u-1"})
	if err != nil || u.ID != "u-1" || u.Username != "alice" {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	if _, err := s.GetUser(ctx, abi.GetUserRequest{ID: "missing"}); !errors.Is(err, userstore.ErrNotFound) {
		t.Errorf("GetUser(missing) error = %v, want userstore.ErrNotFound", err)
	}
	if _, err := s.FindUsers(ctx, abi.FindUsersRequest{Username: "a"}); !errors.Is(err, fault.Unavailable) {
		t.Errorf("FindUsers error = %v, want the response's unavailable", err)
	}
	w, ok := extension.As[userstore.Writer](inst)
	if !ok {
		t.Fatal("the user store adapter is not a Writer")
	}
	if _, err := w.CreateUser(ctx, abi.CreateUserRequest{User: abi.User{Username: "bob"}}); !errors.Is(err, fault.Unsupported) {
		t.Errorf("CreateUser error = %v, want unsupported", err)
	}
	if err := w.DeleteUser(ctx, abi.DeleteUserRequest{ID: "u-1"}); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	gl, _ := extension.As[userstore.GroupLister](inst)
	if _, err := gl.ListGroups(ctx, abi.ListGroupsRequest{}); !errors.Is(err, fault.Unsupported) {
		t.Errorf("ListGroups error = %v, want unsupported", err)
	}
	if err := set.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ops := ft.ops()
	if ops[0] != abi.OpCodeConfigure || ops[len(ops)-1] != abi.OpCodeClose {
		t.Errorf("ops = %v, want configure first and close last", ops)
	}
}

// TestCloseAfterRefusedConfigure: an instance the guest refused is not sent
// OpCodeClose.
func TestCloseAfterRefusedConfigure(t *testing.T) {
	desc := validDescription()
	desc.ConfigSchema = nil
	ft := &fakeTransport{}
	ft.answer = func(c abi.Call) []byte {
		if c.Op == abi.OpCodeConfigure {
			return replyError(t, abi.CodeInvalidRequest, "no sender")
		}
		return nil
	}
	mods, err := plugin.Modules("acme", desc, ft)
	if err != nil {
		t.Fatal(err)
	}
	reg := extension.NewRegistry()
	reg.Register(mods[0])
	_, err = reg.Load(context.Background(), []extension.InstanceConfig{{Module: "authn.sms_otp"}}, extension.LoadOptions{})
	if !errors.Is(err, fault.InvalidRequest) || !strings.Contains(err.Error(), "no sender") {
		t.Fatalf("Load error = %v", err)
	}
	if ops := ft.ops(); len(ops) != 1 || ops[0] != abi.OpCodeConfigure {
		t.Errorf("ops = %v, want configure alone", ops)
	}
}

func TestModulesRefuses(t *testing.T) {
	d := validDescription()
	if _, err := plugin.Modules("acme", d, nil); err == nil {
		t.Error("Modules accepted a nil transport")
	}
	d.Extensions[0].Kind = "nope"
	if _, err := plugin.Modules("acme", d, &fakeTransport{}); !errors.Is(err, plugin.ErrInvalidDescription) {
		t.Errorf("Modules with an unknown kind = %v", err)
	}
}
