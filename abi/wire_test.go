package abi_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// user is a fully populated User.
func user() abi.User {
	return abi.User{
		ID: "u-42", Username: "alice", Email: "alice@example.com", EmailVerified: true,
		PhoneNumber: "+15550100", DisplayName: "Alice A.", GivenName: "Alice", FamilyName: "Anders",
		Enabled: true, Locked: true,
		Attributes: map[string]any{"department": "sales", "level": 3.0, "tags": []any{"a", true, nil}},
		Version:    3,
	}
}

func errp() *abi.Error {
	return &abi.Error{Code: abi.CodeUnavailable, Message: "directory unreachable"}
}

// authnRequest is a typical AuthenticateRequest of about 200 bytes, the
// size the performance goal is stated for.
func authnRequest() *abi.AuthenticateRequest {
	return &abi.AuthenticateRequest{
		Tenant: "acme", FlowID: "f-81c2d7", Step: 1,
		Params:  map[string][]string{"username": {"alice"}, "password": {"s3cret!"}},
		Headers: map[string][]string{"user-agent": {"Mozilla/5.0 (X11; Linux x86_64)"}, "accept-language": {"en-GB"}},
		Cookies: map[string]string{"latch_otp": "c1"},
		IP:      "203.0.113.7", CallbackURL: "https://id.acme.example/flow/f-81c2d7/cb",
	}
}

// cases holds one populated value of every wire type: the round-trip
// table. TestCasesCoverEveryType keeps it complete.
func cases() []struct {
	name string
	msg  abi.Message
} {
	return []struct {
		name string
		msg  abi.Message
	}{
		{"Error", &abi.Error{Code: abi.CodeNotFound, Message: "user not found"}},
		{"AuthenticateRequest", &abi.AuthenticateRequest{
			Tenant: "acme", FlowID: "f-81c2", Step: -2,
			Params:       map[string][]string{"username": {"alice"}, "multi": {"", "x", "y"}, "": {"empty key"}},
			Headers:      map[string][]string{"accept": {"text/html"}},
			Cookies:      map[string]string{"a": "1", "b": "", "": "z"},
			IP:           "203.0.113.7",
			CallbackURL:  "https://id.example/cb",
			KnownSubject: "u-42",
			State:        []byte{0, 1, 2, 255},
			ScriptParams: map[string]string{"mode": "strict"},
			Config:       json.RawMessage(`{"min_length": 8}`),
		}},
		{"AuthenticateResponse", &abi.AuthenticateResponse{
			Outcome: abi.OutcomeChallenge, Subject: "u-42", Issuer: "https://accounts.example",
			Claims: map[string]any{"email": "a@example.com", "n": 1.5, "nested": map[string]any{"k": []any{1.0, "two"}}},
			AMR:    []string{"pwd", "otp"}, Reason: abi.ReasonExpired,
			Challenge: &abi.Challenge{
				Kind:   abi.ChallengeForm,
				Fields: []abi.Field{{Name: "otp", Type: abi.FieldOTP, Label: "Code", Value: "1", Required: true}, {}},
				URL:    "https://x.example", Data: json.RawMessage(`{"challenge":"abc"}`), Message: "m", Error: "e",
			},
			State:      []byte(strings.Repeat("s", 300)),
			SetCookies: []abi.Cookie{{Name: "a", Value: "b", MaxAgeSeconds: -1}, {Name: "c", Value: "d", MaxAgeSeconds: 3600}},
			Error:      errp(),
		}},
		{"Challenge", &abi.Challenge{Kind: abi.ChallengeWebAuthn, Data: json.RawMessage(`{"x":1}`)}},
		{"Field", &abi.Field{Name: "n", Type: abi.FieldHidden, Label: "l", Value: "v", Required: true}},
		{"Cookie", &abi.Cookie{Name: "n", Value: "v", MaxAgeSeconds: -9223372036854775808}},
		{"TokenRequest", &abi.TokenRequest{
			Tenant: "acme", GrantType: "urn:ietf:params:oauth:grant-type:token-exchange", ClientID: "svc-a",
			ClientAuthenticated: true, Scopes: []string{"orders:read", "orders:write"}, Audience: []string{"api"},
			Params: map[string][]string{"subject_token": {"eyJ..."}}, Headers: map[string][]string{"x": {"1", "2"}},
			IP: "::1", Config: json.RawMessage(`{}`),
		}},
		{"TokenResponse", &abi.TokenResponse{
			Declined: true, Subject: "u-42", Scopes: []string{"a"}, Audience: []string{"b", "c"},
			Claims: map[string]any{"acr": "2"}, AccessTokenTTLSeconds: 300, RefreshToken: true,
			Extra: map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}, Error: errp(),
		}},
		{"User", func() *abi.User { u := user(); return &u }()},
		{"Group", &abi.Group{ID: "g-1", Name: "admins", Description: "The admins."}},
		{"FindUsersRequest", &abi.FindUsersRequest{
			Tenant: "acme", Username: "alice", Email: "a@example.com",
			Attributes: map[string]string{"dept": "sales"}, Limit: 50, Cursor: "c-2", Config: json.RawMessage(`{"a":[1]}`),
		}},
		{"FindUsersResponse", &abi.FindUsersResponse{Users: []abi.User{user(), {ID: "u-43"}, {}}, Next: "c-3", Error: errp()}},
		{"GetUserRequest", &abi.GetUserRequest{Tenant: "acme", ID: "u-42", Config: json.RawMessage(`1`)}},
		{"UserResponse", &abi.UserResponse{User: user(), Error: errp()}},
		{"CreateUserRequest", &abi.CreateUserRequest{Tenant: "acme", User: user(), Password: "pw", Config: json.RawMessage(`{}`)}},
		{"UpdateUserRequest", &abi.UpdateUserRequest{Tenant: "acme", User: user(), Password: "pw2", Config: json.RawMessage(`{}`)}},
		{"DeleteUserRequest", &abi.DeleteUserRequest{Tenant: "acme", ID: "u-42", Config: json.RawMessage(`{}`)}},
		{"DeleteUserResponse", &abi.DeleteUserResponse{Error: errp()}},
		{"AuthenticateUserRequest", &abi.AuthenticateUserRequest{Tenant: "acme", Username: "alice", Password: "s3cret", Config: json.RawMessage(`{}`)}},
		{"AuthenticateUserResponse", &abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &abi.User{ID: "u-42", Enabled: true}, Error: errp()}},
		{"ListGroupsRequest", &abi.ListGroupsRequest{Tenant: "acme", UserID: "u-42", Limit: 10, Cursor: "c", Config: json.RawMessage(`{}`)}},
		{"ListGroupsResponse", &abi.ListGroupsResponse{Groups: []abi.Group{{ID: "g-1", Name: "a"}, {ID: "g-2"}}, Next: "n", Error: errp()}},
		{"MapRequest", &abi.MapRequest{
			Tenant: "acme", From: abi.DialectRemote, To: abi.DialectLocal, Issuer: "https://accounts.google.com", Subject: "u-42",
			Claims: map[string]any{"given_name": "Alice", "hd": "example.com", "groups": []any{"a", "b"}, "verified": false, "age": nil},
			Config: json.RawMessage(`{"rename":{"hd":"domain"}}`),
		}},
		{"MapResponse", &abi.MapResponse{Claims: map[string]any{"domain": "example.com", "big": 1e300, "tiny": 1e-9, "neg": -0.5}, Error: errp()}},
		{"Limit", &abi.Limit{Rate: 100, PeriodMillis: 60000, Burst: 20}},
		{"AllowRequest", &abi.AllowRequest{Tenant: "acme", Key: "login:ip:203.0.113.7", Cost: 2, Limit: abi.Limit{Rate: 10, PeriodMillis: 60000}, Config: json.RawMessage(`{}`)}},
		{"AllowResponse", &abi.AllowResponse{Allowed: true, Remaining: 9, RetryAfterMillis: 4200, ResetAfterMillis: 6000, Error: errp()}},
		{"ProvisionEvent", &abi.ProvisionEvent{
			ID: "e-19", Tenant: "acme", Op: abi.ProvisionUpdate, Resource: abi.ResourceUser, ResourceID: "u-42", ExternalID: "00u1ab",
			User: func() *abi.User { u := user(); return &u }(), Group: &abi.Group{ID: "g"}, Members: []string{"u-1", "u-2"}, Config: json.RawMessage(`{}`),
		}},
		{"ProvisionResponse", &abi.ProvisionResponse{Outcome: abi.ProvisionRetry, ExternalID: "x", RetryAfterMillis: 5000, Error: errp()}},
		{"Call", &abi.Call{Op: abi.OpCodeAuthenticate, Payload: []byte{0x0a, 0x01, 0x61}, Entry: 2}},
		{"Reply", &abi.Reply{Payload: []byte{0x0a, 0x01, 0x61}, Error: errp()}},
		{"ConfigureRequest", &abi.ConfigureRequest{Tenant: "acme", Config: json.RawMessage(`{"sender":"Acme"}`)}},
		{"Description", &abi.Description{
			ABIVersion: abi.Version, Name: "acme-otp", Version: "1.4.0",
			Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "sms_otp"}, {Kind: abi.KindThrottler, Name: "sms_rate"}},
			Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP, Hosts: []string{"sms.example.com", "*.example.net:8443"}}, {Name: abi.CapabilityRandom}},
			ConfigSchema: json.RawMessage(`{"type":"object","required":["sender"]}`),
		}},
		{"ExtensionEntry", &abi.ExtensionEntry{Kind: abi.KindGrant, Name: "device_code"}},
		{"CapabilityRequest", &abi.CapabilityRequest{Name: abi.CapabilityHTTP, Hosts: []string{"a.example"}}},
		{"HostCall", &abi.HostCall{Op: abi.HostOpKVGet, Payload: []byte{1, 2, 3}}},
		{"HostReply", &abi.HostReply{Payload: []byte{4, 5}, Error: &abi.Error{Code: abi.CodeForbidden}}},
		{"ConfigGetRequest", &abi.ConfigGetRequest{Tenant: "acme"}},
		{"ConfigGetResponse", &abi.ConfigGetResponse{Config: json.RawMessage(`{"a":1}`)}},
		{"KVGetRequest", &abi.KVGetRequest{Tenant: "acme", Key: "k"}},
		{"KVGetResponse", &abi.KVGetResponse{Found: true, Value: []byte("v")}},
		{"KVSetRequest", &abi.KVSetRequest{Tenant: "acme", Key: "k", Value: []byte("v"), TTLMillis: 1000}},
		{"KVDeleteRequest", &abi.KVDeleteRequest{Tenant: "acme", Key: "k"}},
		{"KVListRequest", &abi.KVListRequest{Tenant: "acme", Prefix: "otp:", Limit: 100, Cursor: "c"}},
		{"KVListResponse", &abi.KVListResponse{Entries: []abi.KVEntry{{Key: "a", Value: []byte("1")}, {Key: "b"}}, Next: "n"}},
		{"KVEntry", &abi.KVEntry{Key: "a", Value: []byte{0}}},
		{"SecretGetRequest", &abi.SecretGetRequest{Tenant: "acme", Name: "sms_api_key"}},
		{"SecretGetResponse", &abi.SecretGetResponse{Value: []byte("k3y")}},
		{"AuditEvent", &abi.AuditEvent{Tenant: "acme", Action: "otp.sent", Subject: "u-42", Outcome: "success", Details: map[string]any{"channel": "sms"}}},
		{"HTTPRequest", &abi.HTTPRequest{
			Method: "POST", URL: "https://sms.example.com/send", Headers: map[string][]string{"Content-Type": {"application/json"}},
			Body: []byte(`{"to":"+15550100"}`), TimeoutMillis: 2000,
		}},
		{"HTTPResponse", &abi.HTTPResponse{Status: 201, Headers: map[string][]string{"Location": {"/m/1"}}, Body: []byte("ok")}},
	}
}

// newOf returns a new zero value of m's type.
func newOf(m abi.Message) abi.Message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(abi.Message)
}

func TestWireRoundTrip(t *testing.T) {
	for _, tt := range cases() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.msg.AppendWire(nil)
			if err != nil {
				t.Fatalf("AppendWire: %v", err)
			}
			got := newOf(tt.msg)
			if err := got.UnmarshalWire(b); err != nil {
				t.Fatalf("UnmarshalWire: %v", err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("round trip changed the value:\n in %+v\nout %+v", tt.msg, got)
			}
			// Deterministic: encoding again, after a prefix, gives the same
			// bytes.
			prefix := []byte("prefix")
			b2, err := got.AppendWire(slices.Clone(prefix))
			if err != nil || !bytes.Equal(b2, append(prefix, b...)) {
				t.Fatalf("re-encoding differs (err %v):\n%x\n%x", err, b, b2[len(prefix):])
			}
			// The zero value encodes to nothing and decodes back.
			zero := newOf(tt.msg)
			if zb, err := zero.AppendWire(nil); err != nil || len(zb) != 0 {
				t.Fatalf("zero value encodes to %x, %v; want nothing", zb, err)
			}
			// Decoding resets the message first.
			if err := got.UnmarshalWire(nil); err != nil || !reflect.DeepEqual(got, zero) {
				t.Fatalf("decoding nothing gave %+v, %v; want the zero value", got, err)
			}
		})
	}
}

// TestCasesCoverEveryType fails when a wire type (an exported struct type of
// package abi) has no round-trip case.
func TestCasesCoverEveryType(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					ts := s.(*ast.TypeSpec)
					if _, ok := ts.Type.(*ast.StructType); ok && ts.Name.IsExported() {
						want = append(want, ts.Name.Name)
					}
				}
			}
		}
	}
	var got []string
	for _, c := range cases() {
		got = append(got, reflect.TypeOf(c.msg).Elem().Name())
		if got[len(got)-1] != c.name {
			t.Errorf("case %q holds a %s", c.name, got[len(got)-1])
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("round-trip cases cover\n%q\nwant every wire type\n%q", got, want)
	}
}

// TestJSONTagsAreSnakeCase extends abi_test.go's check to the envelope,
// describe and host-call types.
func TestJSONTagsAreSnakeCase(t *testing.T) {
	for _, c := range cases() {
		typ := reflect.TypeOf(c.msg).Elem()
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || strings.ToLower(name) != name || strings.Contains(name, "-") {
				t.Errorf("%s.%s has JSON name %q, want snake_case", typ.Name(), f.Name, name)
			}
			if f.Tag.Get("wire") == "" {
				t.Errorf("%s.%s has no wire tag", typ.Name(), f.Name)
			}
		}
	}
}

// golden lists the messages whose encodings are pinned in testdata/: a
// change to their bytes is a change to the contract.
var golden = []struct {
	file string
	msg  abi.Message
}{
	{"error.hex", &abi.Error{Code: abi.CodeNotFound, Message: "user not found"}},
	{"allow_request.hex", &abi.AllowRequest{Tenant: "acme", Key: "login:ip:203.0.113.7", Cost: 1, Limit: abi.Limit{Rate: 10, PeriodMillis: 60000}}},
	{"authenticate_request.hex", authnRequest()},
	{"authenticate_response.hex", &abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		Claims:  map[string]any{"name": "Alice", "groups": []any{"a", "b"}, "n": 2.0},
		Challenge: &abi.Challenge{Kind: abi.ChallengeForm,
			Fields: []abi.Field{{Name: "otp", Type: abi.FieldOTP, Label: "Code", Required: true}}},
		SetCookies: []abi.Cookie{{Name: "c", Value: "v", MaxAgeSeconds: -1}},
	}},
	{"token_request.hex", &abi.TokenRequest{Tenant: "acme", GrantType: "client_credentials", ClientID: "svc-a", ClientAuthenticated: true, Scopes: []string{"orders:read"}}},
	{"call.hex", &abi.Call{Op: abi.OpCodeAllow, Payload: []byte{0x0a, 0x01, 0x61}}},
	{"reply_error.hex", &abi.Reply{Error: &abi.Error{Code: abi.CodeUnsupported, Message: "unknown op"}}},
	{"description.hex", &abi.Description{
		ABIVersion: abi.Version, Name: "acme-otp", Version: "1.4.0",
		Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "sms_otp"}},
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP, Hosts: []string{"sms.example.com"}}, {Name: abi.CapabilityRandom}},
		ConfigSchema: json.RawMessage(`{"type":"object"}`),
	}},
}

// formatHex writes b as lowercase hex, 16 bytes a line.
func formatHex(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		n := min(16, len(b))
		s.WriteString(hex.EncodeToString(b[:n]))
		s.WriteByte('\n')
		b = b[n:]
	}
	return s.String()
}

// TestGolden pins the encodings of a few messages, and checks that the
// pinned bytes still decode to the same values. Run with -update to rewrite
// testdata/ after an intended change of encoding.
func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			b, err := g.msg.AppendWire(nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", g.file)
			if *update {
				if err := os.WriteFile(path, []byte(formatHex(b)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if got := formatHex(b); got != string(want) {
				t.Errorf("encoding of %T changed:\ngot\n%swant\n%s", g.msg, got, want)
			}
			pinned, err := hex.DecodeString(strings.ReplaceAll(string(want), "\n", ""))
			if err != nil {
				t.Fatal(err)
			}
			out := newOf(g.msg)
			if err := out.UnmarshalWire(pinned); err != nil {
				t.Fatalf("decoding the pinned bytes: %v", err)
			}
			if !reflect.DeepEqual(out, g.msg) {
				t.Errorf("pinned bytes decode to %+v, want %+v", out, g.msg)
			}
		})
	}
}

// appendUnknown appends fields no v1 type uses, of every wire type, as a
// later version's writer might.
func appendUnknown(b []byte) []byte {
	return append(b,
		0xb8, 0x06, 0x96, 0x01, // field 103, varint 150
		0xc2, 0x06, 0x03, 'n', 'e', 'w', // field 104, bytes "new"
		0xc9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, // field 105, fixed64
		0xd5, 0x06, 1, 2, 3, 4, // field 106, fixed32
		0x82, 0x80, 0x80, 0x01, 0x00, // field 1<<21 (a 4-byte key), empty bytes
		0xca, 0x06, 0x02, 0x08, 0x01, // field 105 as bytes holding a nested message
	)
}

// TestUnknownFieldsAreSkipped is the forward-compatibility rule: a reader
// skips the fields it does not know, before, between and after the known
// ones, and inside nested messages, and keeps the known fields intact.
func TestUnknownFieldsAreSkipped(t *testing.T) {
	for _, tt := range cases() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.msg.AppendWire(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range [][]byte{
				appendUnknown(slices.Clone(b)),
				append(appendUnknown(nil), b...),
			} {
				got := newOf(tt.msg)
				if err := got.UnmarshalWire(in); err != nil {
					t.Fatalf("UnmarshalWire with unknown fields: %v", err)
				}
				if !reflect.DeepEqual(got, tt.msg) {
					t.Fatalf("unknown fields changed the value:\n in %+v\nout %+v", tt.msg, got)
				}
			}
		})
	}
	t.Run("nested", func(t *testing.T) {
		// An AuthenticateResponse whose Challenge (field 7) and first
		// Field (Challenge field 2) carry a newer version's fields.
		field := appendUnknown([]byte{0x0a, 0x03, 'o', 't', 'p'})
		challenge := appendUnknown([]byte{0x0a, 0x04, 'f', 'o', 'r', 'm'})
		challenge = binaryUvarint(append(challenge, 0x12), uint64(len(field)))
		challenge = append(challenge, field...)
		in := append([]byte{0x0a, 0x09}, "challenge"...)
		in = binaryUvarint(append(in, 0x3a), uint64(len(challenge)))
		in = append(in, challenge...)
		var got abi.AuthenticateResponse
		if err := got.UnmarshalWire(in); err != nil {
			t.Fatal(err)
		}
		want := abi.AuthenticateResponse{Outcome: "challenge", Challenge: &abi.Challenge{Kind: "form", Fields: []abi.Field{{Name: "otp"}}}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
	t.Run("older reader of a newer envelope", func(t *testing.T) {
		in, err := abi.AppendCall(nil, abi.OpCodeHealth, nil)
		if err != nil {
			t.Fatal(err)
		}
		var c abi.Call
		if err := c.UnmarshalWire(appendUnknown(in)); err != nil || c.Op != abi.OpCodeHealth {
			t.Fatalf("got %+v, %v", c, err)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("[", abi.MaxDepth+1) + strings.Repeat("]", abi.MaxDepth+1)
	claims := func(j string) []byte { // MapResponse field 1 (Claims)
		b := []byte{0x0a}
		b = binaryUvarint(b, uint64(len(j)))
		return append(b, j...)
	}
	many := []byte{}
	for range abi.MaxElements + 1 {
		many = append(many, 0x2a, 0x00) // AuthenticateResponse field 5 (AMR): ""
	}
	tests := []struct {
		name string
		msg  abi.Message
		in   []byte
		want string // the whole error text
		is   error
	}{
		{"length beyond the input", new(abi.AuthenticateRequest), append([]byte{0x0a, 0x80, 0x20}, make([]byte, 12)...),
			"abi: decoding AuthenticateRequest field 1: length 4096 exceeds remaining 12 bytes", abi.ErrMalformed},
		{"truncated varint", new(abi.AuthenticateRequest), []byte{0x18, 0x80},
			"abi: decoding AuthenticateRequest field 3: truncated varint", abi.ErrMalformed},
		{"truncated key", new(abi.Error), []byte{0x0a, 0x00, 0x80},
			"abi: decoding Error: truncated varint", abi.ErrMalformed},
		{"field number 0", new(abi.Error), []byte{0x02, 0x00},
			"abi: decoding Error: field number 0 out of range", abi.ErrMalformed},
		{"wrong wire type", new(abi.AuthenticateRequest), []byte{0x08, 0x01},
			"abi: decoding AuthenticateRequest field 1: wire type 0, want 2", abi.ErrMalformed},
		{"end group wire type", new(abi.Error), []byte{0xfc, 0x01},
			"abi: decoding Error field 31: unknown wire type 4", abi.ErrMalformed},
		{"varint overflow", new(abi.Limit), []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
			"abi: decoding Limit field 1: varint overflows 64 bits", abi.ErrMalformed},
		{"uint32 overflow", new(abi.Call), []byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x10},
			"abi: decoding Call field 1: integer 4294967296 out of range", abi.ErrMalformed},
		{"truncated fixed64", new(abi.Error), []byte{0x19, 1, 2},
			"abi: decoding Error field 3: truncated fixed64", abi.ErrMalformed},
		{"nested error names the path", new(abi.AuthenticateResponse), []byte{0x3a, 0x03, 0x0a, 0x05, 'x'},
			"abi: decoding AuthenticateResponse field 7: Challenge field 1: length 5 exceeds remaining 1 bytes", abi.ErrMalformed},
		{"claims not an object", new(abi.MapResponse), claims(`[1]`),
			"abi: decoding MapResponse field 1: invalid JSON at offset 0: JSON object expected", abi.ErrMalformed},
		{"claims invalid JSON", new(abi.MapResponse), claims(`{"a":tru}`),
			"abi: decoding MapResponse field 1: invalid JSON at offset 5: unexpected character 't'", abi.ErrMalformed},
		{"claims trailing data", new(abi.MapResponse), claims(`{} {}`),
			"abi: decoding MapResponse field 1: invalid JSON at offset 3: trailing data after JSON object", abi.ErrMalformed},
		{"claims number out of range", new(abi.MapResponse), claims(`{"a":1e999}`),
			"abi: decoding MapResponse field 1: invalid JSON at offset 5: number out of range", abi.ErrMalformed},
		{"claims too deep", new(abi.MapResponse), claims(`{"a":` + deep + `}`),
			"abi: decoding MapResponse field 1: JSON nested deeper than 64", abi.ErrLimit},
		{"too many elements", new(abi.AuthenticateResponse), many,
			"abi: decoding AuthenticateResponse field 5: more than 65536 elements", abi.ErrLimit},
		{"too large", new(abi.Error), make([]byte, abi.MaxMessageSize+1),
			"abi: decoding Error: size 1048577 exceeds limit 1048576", abi.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.msg.UnmarshalWire(tt.in)
			if err == nil {
				t.Fatalf("decoded %+v, want error %q", tt.msg, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\n want %q", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
		})
	}
}

func binaryUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  abi.Message
		want string
		is   error
	}{
		{"NaN claim", &abi.MapResponse{Claims: map[string]any{"x": []any{1.0, nanValue()}}},
			"abi: encoding MapResponse field 1: claim value NaN has no JSON form", abi.ErrUnencodable},
		{"channel claim", &abi.TokenResponse{Extra: map[string]any{"c": make(chan int)}},
			"abi: encoding TokenResponse field 8: claim value: json: unsupported type: chan int", abi.ErrUnencodable},
		{"invalid raw JSON claim", &abi.AuditEvent{Details: map[string]any{"r": json.RawMessage(`{`)}},
			"abi: encoding AuditEvent field 5: invalid raw JSON claim: invalid JSON at offset 1: object key expected", abi.ErrUnencodable},
		{"invalid json.Number", &abi.MapRequest{Claims: map[string]any{"n": json.Number("1x")}},
			`abi: encoding MapRequest field 6: invalid json.Number "1x"`, abi.ErrUnencodable},
		{"nested claim error", &abi.FindUsersResponse{Users: []abi.User{{Attributes: map[string]any{"c": make(chan int)}}}},
			"abi: encoding FindUsersResponse field 1: User field 11: claim value: json: unsupported type: chan int", abi.ErrUnencodable},
		{"too large", &abi.KVSetRequest{Value: make([]byte, abi.MaxMessageSize)},
			"abi: encoding KVSetRequest: size 1048580 exceeds limit 1048576", abi.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{1, 2, 3}
			b, err := tt.msg.AppendWire(prefix)
			if err == nil {
				t.Fatalf("encoded %x, want error %q", b, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\n want %q", err, tt.want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("failed AppendWire returned %x, want the input %x unchanged", b, prefix)
			}
		})
	}
}

func TestEnvelopes(t *testing.T) {
	req := authnRequest()
	b, err := abi.AppendCall([]byte("x"), abi.OpCodeAuthenticate, req)
	if err != nil {
		t.Fatal(err)
	}
	var c abi.Call
	if err := c.UnmarshalWire(b[1:]); err != nil {
		t.Fatal(err)
	}
	payload, _ := req.AppendWire(nil)
	want := abi.Call{Op: abi.OpCodeAuthenticate, Payload: payload}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("AppendCall gave %+v, want %+v", c, want)
	}
	if b2, _ := want.AppendWire(nil); !bytes.Equal(b2, b[1:]) {
		t.Fatalf("AppendCall and Call.AppendWire disagree:\n%x\n%x", b[1:], b2)
	}
	// Payload aliases the input: no copy on the hot path.
	if &c.Payload[0] != &b[len(b)-len(payload)] {
		t.Error("Call.Payload does not alias the input")
	}

	resp := &abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "u-42", AMR: []string{"pwd"}}
	rb, err := abi.AppendReply(nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	var r abi.Reply
	if err := r.UnmarshalWire(rb); err != nil || r.Error != nil {
		t.Fatal(r, err)
	}
	var got abi.AuthenticateResponse
	if err := got.UnmarshalWire(r.Payload); err != nil || !reflect.DeepEqual(&got, resp) {
		t.Fatalf("reply payload decodes to %+v, %v", got, err)
	}

	// Empty payloads are left out: health and close cost two bytes, an
	// empty success reply none.
	for _, tt := range []struct {
		name string
		got  func() ([]byte, error)
		want string
	}{
		{"call without payload", func() ([]byte, error) { return abi.AppendCall(nil, abi.OpCodeHealth, nil) }, "0802"},
		{"call with empty payload", func() ([]byte, error) { return abi.AppendCall(nil, abi.OpCodeClose, &abi.DeleteUserResponse{}) }, "0803"},
		{"reply without payload", func() ([]byte, error) { return abi.AppendReply(nil, nil) }, ""},
		{"reply with empty payload", func() ([]byte, error) { return abi.AppendReply(nil, &abi.DeleteUserResponse{}) }, ""},
		{"host call", func() ([]byte, error) {
			return abi.AppendHostCall(nil, abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "a", Key: "k"})
		}, "0810120 60a0161120 16b"},
		{"host reply", func() ([]byte, error) { return abi.AppendHostReply(nil, &abi.KVGetResponse{Found: true}) }, "0a020801"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(tt.want, " ", ""); hex.EncodeToString(b) != want {
				t.Errorf("got %x, want %s", b, want)
			}
		})
	}

	t.Run("payload over 127 bytes moves its content once", func(t *testing.T) {
		big := &abi.KVSetRequest{Key: "k", Value: make([]byte, 20000)}
		b, err := abi.AppendHostCall(nil, abi.HostOpKVSet, big)
		if err != nil {
			t.Fatal(err)
		}
		var hc abi.HostCall
		var back abi.KVSetRequest
		if err := hc.UnmarshalWire(b); err != nil || back.UnmarshalWire(hc.Payload) != nil || !reflect.DeepEqual(&back, big) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
	t.Run("failed payload leaves the buffer unchanged", func(t *testing.T) {
		in := []byte{9}
		b, err := abi.AppendReply(in, &abi.MapResponse{Claims: map[string]any{"x": nanValue()}})
		if err == nil || !bytes.Equal(b, in) {
			t.Fatalf("got %x, %v", b, err)
		}
		b, err = abi.AppendCall(in, abi.OpCodeMapClaims, &abi.MapRequest{Claims: map[string]any{"x": nanValue()}})
		if err == nil || !bytes.Equal(b, in) {
			t.Fatalf("got %x, %v", b, err)
		}
	})
}

func nanValue() float64 { return math.NaN() }
