package plugin

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
)

// fakeExt is a hand-written extension with every optional interface; the
// errors it returns are set per test.
type fakeExt struct {
	config                      []byte
	configErr, healthErr, close error
	closed                      bool
}

func (f *fakeExt) Configure(config []byte) error {
	f.config = append([]byte(nil), config...)
	return f.configErr
}
func (f *fakeExt) Health() error { return f.healthErr }
func (f *fakeExt) Close() error  { f.closed = true; return f.close }

// bare has none of the optional interfaces.
type bare struct{}

// authnHandler answers OpCodeAuthenticate the way sdk/authn does (reusing
// its request and response), but returns err (when set) as a call-level
// error, and a subject of the flow id; a flow id of "nan" answers a claim
// that cannot be encoded.
func authnHandler(err *error) Handler {
	var (
		req  abi.AuthenticateRequest
		resp abi.AuthenticateResponse
	)
	return func(op abi.OpCode, payload []byte) (abi.Message, error) {
		if err := Decode(payload, &req); err != nil {
			return nil, err
		}
		if err != nil && *err != nil {
			return nil, *err
		}
		resp = abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: req.FlowID}
		if req.FlowID == "nan" {
			resp.Claims = map[string]any{"x": math.NaN()}
		}
		req = abi.AuthenticateRequest{}
		return &resp, nil
	}
}

func okHandler(resp abi.Message) Handler {
	return func(abi.OpCode, []byte) (abi.Message, error) { return resp, nil }
}

// testModule returns a module with an authenticator "a" (entry 0), a grant
// "g" (entry 1) and a user store "u" (entry 2) with no optional
// interfaces, and the authenticator's fake and error slot.
func testModule(t testing.TB) (*module, *fakeExt, *error) {
	t.Helper()
	m := &module{}
	m.define(Meta{Name: "test-mod", Version: "0.1.0"})
	ext, handlerErr := &fakeExt{}, new(error)
	m.register(abi.KindAuthenticator, "a", ext, authnHandler(handlerErr))
	m.register(abi.KindGrant, "g", bare{}, okHandler(&abi.TokenResponse{Subject: "s"}))
	m.register(abi.KindUserStore, "u", bare{}, okHandler(&abi.DeleteUserResponse{}))
	return m, ext, handlerErr
}

func encodeCall(t testing.TB, op abi.OpCode, entry uint32, req abi.Message) []byte {
	t.Helper()
	c := abi.Call{Op: op, Entry: entry}
	if req != nil {
		p, err := req.AppendWire(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Payload = p
	}
	b, err := c.AppendWire(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeReply(t testing.TB, b []byte) abi.Reply {
	t.Helper()
	var r abi.Reply
	if err := r.UnmarshalWire(b); err != nil {
		t.Fatalf("the reply does not decode: %v (% x)", err, b)
	}
	r.Payload = slices.Clone(r.Payload)
	return r
}

func code(r abi.Reply) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

func TestRouting(t *testing.T) {
	authReq := &abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1"}
	tests := []struct {
		name     string
		call     []byte
		wantCode string
		wantMsg  string // a substring of the error message
		wantSub  string // the authenticator's Subject, for a success
	}{
		{"authenticate entry 0", encodeCall(t, abi.OpCodeAuthenticate, 0, authReq), "", "", "f-1"},
		{"token entry 1", encodeCall(t, abi.OpCodeToken, 1, &abi.TokenRequest{Tenant: "acme"}), "", "", ""},
		{"delete_user entry 2", encodeCall(t, abi.OpCodeDeleteUser, 2, &abi.DeleteUserRequest{ID: "x"}), "", "", ""},
		{"health without a HealthChecker", encodeCall(t, abi.OpCodeHealth, 1, nil), "", "", ""},
		{"close without a Closer", encodeCall(t, abi.OpCodeClose, 2, nil), "", "", ""},
		{"configure without a Configurer", encodeCall(t, abi.OpCodeConfigure, 1, &abi.ConfigureRequest{Config: []byte(`{}`)}), "", "", ""},
		{"another kind's op", encodeCall(t, abi.OpCodeToken, 0, &abi.TokenRequest{}), abi.CodeUnsupported, "authn.a does not answer token", ""},
		{"user store op to a grant", encodeCall(t, abi.OpCodeGetUser, 1, &abi.GetUserRequest{}), abi.CodeUnsupported, "grant.g", ""},
		{"unknown entry", encodeCall(t, abi.OpCodeAuthenticate, 3, authReq), abi.CodeNotFound, "entry 3", ""},
		{"huge entry", encodeCall(t, abi.OpCodeHealth, math.MaxUint32, nil), abi.CodeNotFound, "entry 4294967295", ""},
		{"unknown op", encodeCall(t, abi.OpCode(999), 0, nil), abi.CodeUnsupported, "op(999)", ""},
		{"unknown op in the lifecycle range", encodeCall(t, abi.OpCode(4), 0, nil), abi.CodeUnsupported, "op(4)", ""},
		{"unknown op to an unknown entry", encodeCall(t, abi.OpCode(17), 9, nil), abi.CodeUnsupported, "op(17)", ""},
		{"empty call (op 0)", nil, abi.CodeUnsupported, "op(0)", ""},
		{"garbage call", []byte{0xff, 0xff, 0xff}, abi.CodeInvalidRequest, "malformed call envelope", ""},
		{"truncated payload field", []byte{0x08, 0x10, 0x12, 0x05, 0x0a}, abi.CodeInvalidRequest, "malformed call envelope", ""},
		{"payload that does not decode", append([]byte{0x08, 0x10, 0x12, 0x02}, 0x0a, 0x05), abi.CodeInvalidRequest, "AuthenticateRequest", ""},
		{"configure payload that does not decode", append([]byte{0x08, 0x01, 0x12, 0x01}, 0x07), abi.CodeInvalidRequest, "ConfigureRequest", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := testModule(t)
			r := decodeReply(t, m.handle(tt.call))
			if got := code(r); got != tt.wantCode {
				t.Fatalf("code %q, want %q (reply %+v)", got, tt.wantCode, r)
			}
			if tt.wantCode != "" {
				if !strings.Contains(r.Error.Message, tt.wantMsg) {
					t.Errorf("message %q does not contain %q", r.Error.Message, tt.wantMsg)
				}
				if len(r.Payload) != 0 {
					t.Errorf("an error reply carries a payload too: % x", r.Payload)
				}
				return
			}
			if tt.wantSub != "" {
				var resp abi.AuthenticateResponse
				if err := resp.UnmarshalWire(r.Payload); err != nil {
					t.Fatal(err)
				}
				if resp.Subject != tt.wantSub {
					t.Errorf("subject %q, want %q", resp.Subject, tt.wantSub)
				}
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
		reported bool // passed to OnInternalError
	}{
		{"plugin error keeps its code", ErrNotFound.WithMessage("no such device"), abi.CodeNotFound, "no such device", false},
		{"wrapped plugin error keeps its code", fmt.Errorf("loading device: %w", ErrConflict.WithMessage("taken")), abi.CodeConflict, "taken", false},
		{"sentinel", ErrUnavailable, abi.CodeUnavailable, "unavailable", false},
		{"plain error is internal", errors.New("dial tcp 10.0.0.7:5432: password hunter2 refused"), abi.CodeInternal, internalMessage, true},
		{"unknown code is internal", &Error{Code: "teapot", Message: "short and stout"}, abi.CodeInternal, "short and stout", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, handlerErr := testModule(t)
			var reported []error
			m.meta.OnInternalError = func(err error) { reported = append(reported, err) }
			*handlerErr = tt.err
			r := decodeReply(t, m.handle(encodeCall(t, abi.OpCodeAuthenticate, 0, &abi.AuthenticateRequest{})))
			if code(r) != tt.wantCode || r.Error.Message != tt.wantMsg {
				t.Fatalf("reply error %+v, want %s %q", r.Error, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode == abi.CodeInternal && strings.Contains(r.Error.Message, "hunter2") {
				t.Errorf("the internal detail leaked: %q", r.Error.Message)
			}
			if got := len(reported) > 0; got != tt.reported {
				t.Fatalf("reported %v, want %v", reported, tt.reported)
			}
			if tt.reported {
				var ce *CallError
				if !errors.As(reported[0], &ce) || ce.ID != "authn.a" || ce.Op != abi.OpCodeAuthenticate || !errors.Is(reported[0], tt.err) {
					t.Errorf("reported %#v, want a CallError for authn.a authenticate wrapping the error", reported[0])
				}
				if want := "plugin authn.a authenticate: "; !strings.HasPrefix(reported[0].Error(), want) {
					t.Errorf("reported %q, want the prefix %q", reported[0], want)
				}
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	boom := errors.New("connection string postgres://admin:pw@db")
	tests := []struct {
		name     string
		op       abi.OpCode
		set      func(*fakeExt)
		wantCode string
		check    func(t *testing.T, f *fakeExt)
	}{
		{
			name: "configure hands over the config",
			op:   abi.OpCodeConfigure,
			check: func(t *testing.T, f *fakeExt) {
				if string(f.config) != `{"sender":"acme"}` {
					t.Errorf("Configure got %q", f.config)
				}
			},
		},
		{"configure refused with a code", abi.OpCodeConfigure, func(f *fakeExt) { f.configErr = ErrInvalidRequest.WithMessage("sender is required") }, abi.CodeInvalidRequest, nil},
		{"configure refused with a plain error", abi.OpCodeConfigure, func(f *fakeExt) { f.configErr = boom }, abi.CodeInternal, nil},
		{"healthy", abi.OpCodeHealth, nil, "", nil},
		{"unhealthy", abi.OpCodeHealth, func(f *fakeExt) { f.healthErr = ErrUnavailable }, abi.CodeUnavailable, nil},
		{
			name: "close",
			op:   abi.OpCodeClose,
			check: func(t *testing.T, f *fakeExt) {
				if !f.closed {
					t.Error("Close was not called")
				}
			},
		},
		{"close fails", abi.OpCodeClose, func(f *fakeExt) { f.close = boom }, abi.CodeInternal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, f, _ := testModule(t)
			if tt.set != nil {
				tt.set(f)
			}
			var req abi.Message
			if tt.op == abi.OpCodeConfigure {
				req = &abi.ConfigureRequest{Tenant: "acme", Config: []byte(`{"sender":"acme"}`)}
			}
			r := decodeReply(t, m.handle(encodeCall(t, tt.op, 0, req)))
			if code(r) != tt.wantCode {
				t.Fatalf("reply %+v, want code %q", r, tt.wantCode)
			}
			if tt.wantCode == "" && (len(r.Payload) != 0 || r.Error != nil) {
				t.Errorf("a lifecycle success is an empty reply, got %+v", r)
			}
			if tt.wantCode == abi.CodeInternal && strings.Contains(r.Error.Message, "postgres") {
				t.Errorf("the internal detail leaked: %q", r.Error.Message)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestResponseThatCannotBeEncoded(t *testing.T) {
	m, _, _ := testModule(t)
	var reported error
	m.meta.OnInternalError = func(err error) { reported = err }
	r := decodeReply(t, m.handle(encodeCall(t, abi.OpCodeAuthenticate, 0, &abi.AuthenticateRequest{FlowID: "nan"})))
	if code(r) != abi.CodeInternal {
		t.Fatalf("reply %+v, want internal", r)
	}
	if !errors.Is(reported, abi.ErrUnencodable) {
		t.Errorf("reported %v, want ErrUnencodable", reported)
	}
}

func TestReplyBufferIsReused(t *testing.T) {
	m, _, _ := testModule(t)
	call := encodeCall(t, abi.OpCodeAuthenticate, 0, &abi.AuthenticateRequest{FlowID: "f-1"})
	first := m.handle(call)
	second := m.handle(call)
	if &first[0] != &second[0] {
		t.Error("the second reply did not reuse the first one's buffer")
	}
}

func TestDescribe(t *testing.T) {
	m := &module{}
	m.define(Meta{
		Name:    "acme-otp",
		Version: "1.4.0",
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityHTTP, Hosts: []string{"sms.example.com"}},
			{Name: abi.CapabilityRandom},
		},
		ConfigSchema: []byte(`{"type":"object","required":["sender"]}`),
	})
	m.register(abi.KindAuthenticator, "sms_otp", bare{}, okHandler(nil))
	m.register(abi.KindUserStore, "sms_otp", bare{}, okHandler(nil))
	m.register(abi.KindThrottler, "per.tenant", bare{}, okHandler(nil))
	var d abi.Description
	if err := d.UnmarshalWire(m.describe()); err != nil {
		t.Fatal(err)
	}
	want := abi.Description{
		ABIVersion: abi.Version,
		Name:       "acme-otp",
		Version:    "1.4.0",
		Extensions: []abi.ExtensionEntry{
			{Kind: abi.KindAuthenticator, Name: "sms_otp"},
			{Kind: abi.KindUserStore, Name: "sms_otp"},
			{Kind: abi.KindThrottler, Name: "per.tenant"},
		},
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityHTTP, Hosts: []string{"sms.example.com"}},
			{Name: abi.CapabilityRandom},
		},
		ConfigSchema: []byte(`{"type":"object","required":["sender"]}`),
	}
	got, _ := d.AppendWire(nil)
	wantB, _ := want.AppendWire(nil)
	if string(got) != string(wantB) {
		t.Errorf("description %+v, want %+v", d, want)
	}
}

func TestDescribeCopiesMeta(t *testing.T) {
	caps := []abi.CapabilityRequest{{Name: abi.CapabilityHTTP, Hosts: []string{"a.example.com"}}}
	m := &module{}
	m.define(Meta{Name: "m", Version: "1", Capabilities: caps})
	caps[0].Hosts[0] = "evil.example.com"
	if got := m.description().Capabilities[0].Hosts[0]; got != "a.example.com" {
		t.Errorf("a later change to the caller's Meta reached the description: %q", got)
	}
}

func TestDefinePanics(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
		want string
	}{
		{"empty name", Meta{Version: "1"}, "invalid module name"},
		{"upper-case name", Meta{Name: "Acme", Version: "1"}, "invalid module name"},
		{"name starting with a dash", Meta{Name: "-acme", Version: "1"}, "invalid module name"},
		{"no version", Meta{Name: "acme"}, "no version"},
		{"unknown capability", Meta{Name: "acme", Version: "1", Capabilities: []abi.CapabilityRequest{{Name: "fs"}}}, `unknown capability "fs"`},
		{"repeated capability", Meta{Name: "acme", Version: "1", Capabilities: []abi.CapabilityRequest{{Name: "kv"}, {Name: "kv"}}}, "declared twice"},
		{"hosts on kv", Meta{Name: "acme", Version: "1", Capabilities: []abi.CapabilityRequest{{Name: "kv", Hosts: []string{"x"}}}}, "takes no hosts"},
		{"schema not JSON", Meta{Name: "acme", Version: "1", ConfigSchema: []byte("{")}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantPanic(t, tt.want, func() { (&module{}).define(tt.meta) })
		})
	}
	t.Run("twice", func(t *testing.T) {
		m := &module{}
		m.define(Meta{Name: "acme", Version: "1"})
		wantPanic(t, "Define called twice", func() { m.define(Meta{Name: "acme", Version: "1"}) })
	})
}

func TestRegisterPanics(t *testing.T) {
	long := strings.Repeat("a", 122) // "grant." and 122 bytes: the longest id
	tests := []struct {
		desc       string
		kind, name string
		impl       any
		h          Handler
		want       string
	}{
		{"unknown kind", "widget", "x", bare{}, okHandler(nil), `unknown kind "widget"`},
		{"empty name", abi.KindGrant, "", bare{}, okHandler(nil), "invalid grant name"},
		{"upper case", abi.KindGrant, "Token", bare{}, okHandler(nil), "invalid grant name"},
		{"dash", abi.KindGrant, "token-exchange", bare{}, okHandler(nil), "invalid grant name"},
		{"empty segment", abi.KindGrant, "a..b", bare{}, okHandler(nil), "invalid grant name"},
		{"digit first", abi.KindGrant, "2fa", bare{}, okHandler(nil), "invalid grant name"},
		{"id too long", abi.KindGrant, long + "a", bare{}, okHandler(nil), "invalid grant name"},
		{"nil impl", abi.KindGrant, "x", nil, okHandler(nil), "no implementation"},
		{"nil handler", abi.KindGrant, "x", bare{}, nil, "no implementation"},
		{"duplicate", abi.KindAuthenticator, "a", bare{}, okHandler(nil), "registered twice"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m := &module{}
			m.register(abi.KindAuthenticator, "a", bare{}, okHandler(nil))
			wantPanic(t, tt.want, func() { m.register(tt.kind, tt.name, tt.impl, tt.h) })
		})
	}
	t.Run("same name, another kind", func(t *testing.T) {
		m := &module{}
		m.register(abi.KindAuthenticator, "a", bare{}, okHandler(nil))
		m.register(abi.KindUserStore, "a", bare{}, okHandler(nil))
		m.register(abi.KindGrant, long, bare{}, okHandler(nil))
		if len(m.entries) != 3 {
			t.Errorf("%d entries, want 3", len(m.entries))
		}
	})
}

func wantPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, want) {
			t.Errorf("panic %v, want one containing %q", r, want)
		}
	}()
	fn()
}

func TestErrorValues(t *testing.T) {
	e := ErrNotFound.WithMessage("no such device")
	if e == ErrNotFound || ErrNotFound.Message != "not found" {
		t.Error("WithMessage changed the sentinel")
	}
	if !errors.Is(fmt.Errorf("x: %w", e), ErrNotFound) {
		t.Error("errors.Is does not match a wrapped error of the same code")
	}
	if errors.Is(e, ErrConflict) {
		t.Error("errors.Is matched another code")
	}
	if e.Error() != "not_found: no such device" || (&Error{Code: "x"}).Error() != "x" {
		t.Errorf("Error() = %q", e.Error())
	}
	if got := FromWire(&abi.Error{Code: "teapot", Message: "m"}); got.Code != abi.CodeInternal || got.Message != "m" {
		t.Errorf("FromWire of an unknown code = %+v", got)
	}
	if FromWire(nil) != nil || WireError(nil) != nil {
		t.Error("nil did not map to nil")
	}
}

// FuzzDispatch checks that no Call, however malformed, panics the
// dispatcher, and that every reply is a Reply that decodes, with a known
// code when it is an error.
func FuzzDispatch(f *testing.F) {
	f.Add(encodeCall(f, abi.OpCodeAuthenticate, 0, &abi.AuthenticateRequest{Tenant: "acme", Params: map[string][]string{"u": {"a"}}}))
	f.Add(encodeCall(f, abi.OpCodeConfigure, 0, &abi.ConfigureRequest{Config: []byte(`{}`)}))
	f.Add(encodeCall(f, abi.OpCodeToken, 1, &abi.TokenRequest{}))
	f.Add(encodeCall(f, abi.OpCodeHealth, 2, nil))
	f.Add([]byte{})
	f.Add([]byte{0xff})
	m, _, _ := testModule(f)
	f.Fuzz(func(t *testing.T, call []byte) {
		var r abi.Reply
		if err := r.UnmarshalWire(m.handle(call)); err != nil {
			t.Fatalf("the reply does not decode: %v", err)
		}
		if r.Error != nil && !KnownCode(r.Error.Code) {
			t.Fatalf("unknown code %q", r.Error.Code)
		}
	})
}

// benchRequest is an AuthenticateRequest of 200 bytes encoded: a password
// form post.
func benchRequest(tb testing.TB) *abi.AuthenticateRequest {
	tb.Helper()
	req := &abi.AuthenticateRequest{
		Tenant: "acme",
		FlowID: "f-81c2a7d0-4b1e-4d6f-9a51-3f0e2c9d1b7e",
		Step:   1,
		Params: map[string][]string{"username": {"alice@example.com"}, "password": {"correct horse battery"}},
		Headers: map[string][]string{
			"user-agent": {"Mozilla/5.0 (X11; Linux x86_64)"},
		},
		IP:          "203.0.113.7",
		CallbackURL: "https://id.acme.test/cb",
	}
	b, _ := req.AppendWire(nil)
	if len(b) < 195 || len(b) > 205 {
		tb.Fatalf("the benchmark request is %d bytes, want about 200", len(b))
	}
	return req
}

func TestBenchRequestSize(t *testing.T) { benchRequest(t) }

// BenchmarkDispatch measures one call through the dispatcher natively:
// decode the Call envelope and its 200-byte AuthenticateRequest, route,
// run a trivial authenticator, encode the Reply.
func BenchmarkDispatch(b *testing.B) {
	m, _, _ := testModule(b)
	call := encodeCall(b, abi.OpCodeAuthenticate, 0, benchRequest(b))
	b.SetBytes(int64(len(call)))
	b.ReportAllocs()
	for b.Loop() {
		if r := m.handle(call); len(r) == 0 {
			b.Fatal("empty reply")
		}
	}
}

func TestValidNames(t *testing.T) {
	entries := map[string]bool{
		"password": true, "sms_otp": true, "oidc.google": true, "a": true, "a1_b2.c3": true,
		"": false, ".a": false, "a.": false, "a..b": false, "A": false, "_a": false, "1a": false,
		"a.1b": false, "a-b": false, "a b": false, "é": false,
	}
	for name, want := range entries {
		if got := validEntryName(name); got != want {
			t.Errorf("validEntryName(%q) = %v, want %v", name, got, want)
		}
	}
	modules := map[string]bool{
		"acme-otp": true, "a": true, "1password": true, "x.y_z": true,
		"": false, "-a": false, "Acme": false, "a b": false, strings.Repeat("a", 129): false,
	}
	for name, want := range modules {
		if got := validModuleName(name); got != want {
			t.Errorf("validModuleName(%q) = %v, want %v", name, got, want)
		}
	}
}
