package userstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

func TestSentinelsMatchWireCodes(t *testing.T) {
	tests := []struct {
		wire     abi.Error
		sentinel error
	}{
		{abi.Error{Code: abi.CodeNotFound, Message: "no such entry"}, userstore.ErrNotFound},
		{abi.Error{Code: abi.CodeConflict}, userstore.ErrConflict},
		{abi.Error{Code: abi.CodePreconditionFailed}, userstore.ErrVersionMismatch},
		{abi.Error{Code: abi.CodeUnsupported}, userstore.ErrReadOnly},
	}
	for _, tt := range tests {
		t.Run(tt.wire.Code, func(t *testing.T) {
			err := fmt.Errorf("plugin/userstore.rest: calling get_user: %w", fault.FromWire(tt.wire))
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("a wire %q error does not match %v", tt.wire.Code, tt.sentinel)
			}
		})
	}
}

func TestCheckAuthenticate(t *testing.T) {
	tests := []struct {
		name     string
		resp     abi.AuthenticateUserResponse
		err      error
		wantCode fault.Code
		wantIs   error
	}{
		{name: "authenticated", resp: abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &abi.User{ID: "u"}}},
		{name: "wrong password", resp: abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}},
		{name: "unknown user", resp: abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}},
		{name: "locked", resp: abi.AuthenticateUserResponse{Outcome: abi.UserLocked}},
		{name: "store down", err: fault.Unavailable, wantCode: fault.CodeUnavailable},
		{name: "store down on the wire", resp: abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, Error: &abi.Error{Code: abi.CodeUnavailable}}, wantCode: fault.CodeUnavailable},
		{name: "authenticated without user", resp: abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated}, wantCode: fault.CodeInternal, wantIs: userstore.ErrInvalidResponse},
		{name: "authenticated user without id", resp: abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &abi.User{}}, wantCode: fault.CodeInternal, wantIs: userstore.ErrInvalidResponse},
		{name: "unknown outcome", resp: abi.AuthenticateUserResponse{Outcome: "ok"}, wantCode: fault.CodeInternal, wantIs: userstore.ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := userstore.CheckAuthenticate(tt.resp, tt.err)
			if tt.wantCode == "" {
				if err != nil || got.Outcome != tt.resp.Outcome {
					t.Fatalf("CheckAuthenticate = %+v, %v", got, err)
				}
				return
			}
			if fault.CodeOf(err) != tt.wantCode {
				t.Errorf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}
