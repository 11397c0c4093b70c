//go:build !wasip1

package authn_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// scripted answers what its fields say, and records the request.
type scripted struct {
	resp abi.AuthenticateResponse
	err  error
	got  abi.AuthenticateRequest
}

func (s *scripted) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	s.got = req
	return s.resp, s.err
}

var script = &scripted{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	authn.Register("scripted", script)
}

func TestAuthenticateRoundTrip(t *testing.T) {
	withState := authn.Form(abi.Field{Name: "code", Type: abi.FieldOTP})
	withState.State = []byte{0, 1, 2}
	withState.Challenge.Message = "We sent a code"
	full := authn.Authenticated("u-42", map[string]any{"email": "a@example.com", "n": 3.0})
	full.AMR, full.Issuer = []string{"pwd", "otp"}, "https://idp.example.com"
	full.SetCookies = []abi.Cookie{{Name: "remember", Value: "1", MaxAgeSeconds: 3600}}
	tests := []struct {
		name     string
		resp     abi.AuthenticateResponse
		err      error
		want     abi.AuthenticateResponse
		wantCode string // of the harness's error; "" for none
	}{
		{name: "authenticated, every field", resp: full, want: full},
		{name: "not authenticated", resp: authn.NotAuthenticated(abi.ReasonLocked), want: authn.NotAuthenticated(abi.ReasonLocked)},
		{name: "form with state", resp: withState, want: withState},
		{name: "redirect", resp: authn.Redirect("https://idp.example.com/auth"), want: authn.Redirect("https://idp.example.com/auth")},
		{
			name:     "plugin error is a failure with its code",
			err:      fmt.Errorf("calling the directory: %w", plugin.ErrUnavailable.WithMessage("directory down")),
			want:     abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: &abi.Error{Code: abi.CodeUnavailable, Message: "directory down"}},
			wantCode: abi.CodeUnavailable,
		},
		{
			name:     "plain error is an internal failure that says nothing",
			resp:     authn.Authenticated("ignored", nil),
			err:      errors.New("ldap bind cn=admin,dc=acme password=s3cret failed"),
			want:     abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: &abi.Error{Code: abi.CodeInternal, Message: "internal error"}},
			wantCode: abi.CodeInternal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			script.resp, script.err = tt.resp, tt.err
			req := abi.AuthenticateRequest{
				Tenant: "acme", FlowID: "f-1", Step: 1,
				Params:  map[string][]string{"username": {"alice"}},
				Cookies: map[string]string{"remember": "1"},
				State:   []byte("prev"),
			}
			got, err := h.Authenticate("scripted", req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response\n got %+v\nwant %+v", got, tt.want)
			}
			var pe *plugin.Error
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantCode != "" && (!errors.As(err, &pe) || pe.Code != tt.wantCode):
				t.Errorf("error %v, want code %s", err, tt.wantCode)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the internal detail leaked: %v", err)
			}
			if script.got.FlowID != "f-1" || script.got.Params["username"][0] != "alice" || string(script.got.State) != "prev" {
				t.Errorf("the authenticator got %+v", script.got)
			}
		})
	}
}

func TestWrongKindAndUnknownName(t *testing.T) {
	h := plugintest.New(t)
	// A raw call of another kind's operation to the authenticator.
	call, _ := (&abi.Call{Op: abi.OpCodeToken, Entry: h.Entry("scripted")}).AppendWire(nil)
	var r abi.Reply
	if err := r.UnmarshalWire(h.Call(call)); err != nil || r.Error == nil || r.Error.Code != abi.CodeUnsupported {
		t.Errorf("reply %+v, %v; want unsupported", r, err)
	}
}

func TestBuilders(t *testing.T) {
	f := authn.Form(abi.Field{Name: "a"}, abi.Field{Name: "b"})
	if f.Outcome != abi.OutcomeChallenge || f.Challenge.Kind != abi.ChallengeForm || len(f.Challenge.Fields) != 2 {
		t.Errorf("Form = %+v", f)
	}
	r := authn.Redirect("https://x")
	if r.Outcome != abi.OutcomeChallenge || r.Challenge.Kind != abi.ChallengeRedirect || r.Challenge.URL != "https://x" {
		t.Errorf("Redirect = %+v", r)
	}
	if a := authn.Authenticated("s", nil); a.Outcome != abi.OutcomeAuthenticated || a.Subject != "s" {
		t.Errorf("Authenticated = %+v", a)
	}
	if n := authn.NotAuthenticated(abi.ReasonExpired); n.Outcome != abi.OutcomeNotAuthenticated || n.Reason != abi.ReasonExpired {
		t.Errorf("NotAuthenticated = %+v", n)
	}
}

func TestRegisterNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Register(nil) did not panic")
		}
	}()
	authn.Register("nil", nil)
}

// BenchmarkAuthenticate measures a call as latch_handle runs it, natively:
// the Call copied into the guest's buffer, decoded with its 200-byte
// AuthenticateRequest, routed to the authenticator, and the Reply encoded.
func BenchmarkAuthenticate(b *testing.B) {
	script.resp, script.err = authn.Authenticated("u-42", nil), nil
	req := abi.AuthenticateRequest{
		Tenant: "acme", FlowID: "f-81c2a7d0-4b1e-4d6f-9a51-3f0e2c9d1b7e", Step: 1,
		Params:      map[string][]string{"username": {"alice@example.com"}, "password": {"correct horse battery"}},
		Headers:     map[string][]string{"user-agent": {"Mozilla/5.0 (X11; Linux x86_64)"}},
		IP:          "203.0.113.7",
		CallbackURL: "https://id.acme.test/cb",
	}
	payload, _ := req.AppendWire(nil)
	entry := plugintest.New(b).Entry("scripted")
	call, _ := (&abi.Call{Op: abi.OpCodeAuthenticate, Entry: entry, Payload: payload}).AppendWire(nil)
	b.Logf("request %d bytes, call %d bytes", len(payload), len(call))
	b.SetBytes(int64(len(call)))
	b.ReportAllocs()
	for b.Loop() {
		if len(guest.TestCall(call)) == 0 {
			b.Fatal("empty reply")
		}
	}
}
