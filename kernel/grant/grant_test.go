package grant_test

import (
	"errors"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/grant"
)

func TestCheck(t *testing.T) {
	req := abi.TokenRequest{GrantType: "urn:x", Scopes: []string{"a", "b"}}
	tests := []struct {
		name     string
		req      abi.TokenRequest
		resp     abi.TokenResponse
		err      error
		wantIs   error
		wantCode fault.Code
	}{
		{name: "granted subset", req: req, resp: abi.TokenResponse{Subject: "u", Scopes: []string{"a"}}},
		{name: "no scopes requested, grant chooses", req: abi.TokenRequest{}, resp: abi.TokenResponse{Scopes: []string{"default"}}},
		{name: "declined on the wire", req: req, resp: abi.TokenResponse{Declined: true, Subject: "ignored"}, wantIs: grant.ErrDeclined},
		{name: "declined as error", req: req, err: grant.ErrDeclined, wantIs: grant.ErrDeclined},
		{name: "refused as fault", req: req, err: fault.Unauthenticated.WithMessage("bad assertion"), wantCode: fault.CodeUnauthenticated},
		{name: "refused on the wire", req: req, resp: abi.TokenResponse{Error: &abi.Error{Code: abi.CodeForbidden}}, wantCode: fault.CodeForbidden},
		{name: "scope escalation", req: req, resp: abi.TokenResponse{Scopes: []string{"a", "admin"}}, wantIs: grant.ErrInvalidResponse, wantCode: fault.CodeInternal},
		{name: "negative lifetime", req: req, resp: abi.TokenResponse{AccessTokenTTLSeconds: -1}, wantIs: grant.ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grant.Check(tt.req, tt.resp, tt.err)
			if tt.wantIs == nil && tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if tt.wantCode != "" && fault.CodeOf(err) != tt.wantCode {
				t.Errorf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
			}
		})
	}
}
