//go:build !wasip1

package grant_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/grant"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

type scripted struct {
	resp abi.TokenResponse
	err  error
	got  abi.TokenRequest
}

func (s *scripted) Token(req abi.TokenRequest) (abi.TokenResponse, error) {
	s.got = req
	return s.resp, s.err
}

var script = &scripted{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	grant.Register("scripted", script)
}

func TestTokenRoundTrip(t *testing.T) {
	full := abi.TokenResponse{
		Subject: "u-1", Scopes: []string{"a", "b"}, Audience: []string{"api"},
		Claims: map[string]any{"tier": "gold"}, AccessTokenTTLSeconds: 60, RefreshToken: true,
		Extra: map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"},
	}
	tests := []struct {
		name     string
		resp     abi.TokenResponse
		err      error
		want     abi.TokenResponse
		wantCode string
	}{
		{name: "issue", resp: full, want: full},
		{name: "decline", resp: grant.Decline(), want: abi.TokenResponse{Declined: true}},
		{
			name: "refuse with a code", err: plugin.ErrForbidden.WithMessage("client may not use this grant"),
			want:     abi.TokenResponse{Error: &abi.Error{Code: abi.CodeForbidden, Message: "client may not use this grant"}},
			wantCode: abi.CodeForbidden,
		},
		{
			name: "plain error", err: errors.New("redis: connection reset by 10.1.2.3"),
			want:     abi.TokenResponse{Error: &abi.Error{Code: abi.CodeInternal, Message: "internal error"}},
			wantCode: abi.CodeInternal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			script.resp, script.err = tt.resp, tt.err
			req := abi.TokenRequest{Tenant: "acme", GrantType: "x", ClientID: "svc", ClientAuthenticated: true, Scopes: []string{"a"}}
			got, err := h.Token("scripted", req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response\n got %+v\nwant %+v", got, tt.want)
			}
			if code := codeOf(err); code != tt.wantCode {
				t.Errorf("error %v, want code %q", err, tt.wantCode)
			}
			if !reflect.DeepEqual(script.got, req) {
				t.Errorf("the grant got %+v, want %+v", script.got, req)
			}
		})
	}
}

func codeOf(err error) string {
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
