package authn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/fault"
)

func TestCheck(t *testing.T) {
	form := &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{{Name: "otp", Type: abi.FieldOTP}}}
	errLDAP := errors.New("ldap down")
	tests := []struct {
		name     string
		resp     abi.AuthenticateResponse
		err      error
		wantCode fault.Code // "" means accepted
		wantIs   error
	}{
		{name: "authenticated", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "u-1"}},
		{name: "not authenticated", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}},
		{name: "form challenge", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: form}},
		{name: "redirect challenge", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeRedirect, URL: "https://idp"}}},
		{name: "technical failure as error", err: errLDAP, wantIs: errLDAP},
		{name: "technical failure on the wire", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: &abi.Error{Code: abi.CodeUnavailable, Message: "ldap down"}}, wantCode: fault.CodeUnavailable},
		{name: "failure without error", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeFailure}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "authenticated without subject", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "challenge without challenge", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "form without fields", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeForm}}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "webauthn without data", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: abi.ChallengeWebAuthn}}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "unknown challenge", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: &abi.Challenge{Kind: "carrier-pigeon"}}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "unknown outcome", resp: abi.AuthenticateResponse{Outcome: "maybe"}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "empty outcome is not a refusal", resp: abi.AuthenticateResponse{}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
		{name: "oversized state", resp: abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: form, State: []byte(strings.Repeat("x", authn.MaxStateSize+1))}, wantCode: fault.CodeInternal, wantIs: authn.ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authn.Check(tt.resp, tt.err)
			if tt.wantCode == "" && tt.wantIs == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if got.Outcome != tt.resp.Outcome {
					t.Fatalf("outcome = %q", got.Outcome)
				}
				return
			}
			if err == nil {
				t.Fatal("Check accepted a failure or a broken response")
			}
			if got.Outcome != "" {
				t.Errorf("a failed check returned outcome %q", got.Outcome)
			}
			if tt.wantCode != "" && fault.CodeOf(err) != tt.wantCode {
				t.Errorf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}
