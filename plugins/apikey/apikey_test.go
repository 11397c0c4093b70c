package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func configured(t *testing.T) *plugintest.Harness {
	t.Helper()
	h := plugintest.New(t)
	cfg := `{"keys":[
	  {"sha256":"` + digest("key-ci") + `","subject":"svc-ci","scopes":["deploy","read"],"ttl_seconds":300},
	  {"sha256":"` + digest("key-bot") + `","subject":"svc-bot","clients":["bot-client"]}]}`
	if err := h.Configure("apikey", []byte(cfg)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return h
}

func TestToken(t *testing.T) {
	h := configured(t)
	tests := []struct {
		name        string
		req         abi.TokenRequest
		wantSubject string
		wantScopes  []string
		wantErr     error
		wantDecline bool
	}{
		{name: "other grant type", req: abi.TokenRequest{GrantType: "password"}, wantDecline: true},
		{name: "key with all its scopes", req: tok("key-ci", "any", nil), wantSubject: "svc-ci", wantScopes: []string{"deploy", "read"}},
		{name: "key with a subset", req: tok("key-ci", "any", []string{"read"}), wantSubject: "svc-ci", wantScopes: []string{"read"}},
		{name: "scope not allowed", req: tok("key-ci", "any", []string{"admin"}), wantErr: plugin.ErrForbidden},
		{name: "unknown key", req: tok("nope", "any", nil), wantErr: plugin.ErrUnauthenticated},
		{name: "key bound to another client", req: tok("key-bot", "other", nil), wantErr: plugin.ErrUnauthenticated},
		{name: "key bound to this client", req: tok("key-bot", "bot-client", nil), wantSubject: "svc-bot"},
		{name: "no key", req: abi.TokenRequest{GrantType: DefaultGrantType, ClientAuthenticated: true}, wantErr: plugin.ErrInvalidRequest},
		{name: "public client", req: abi.TokenRequest{GrantType: DefaultGrantType, Params: map[string][]string{Param: {"key-ci"}}}, wantErr: plugin.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Token("apikey", tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Declined != tt.wantDecline || resp.Subject != tt.wantSubject || len(resp.Scopes) != len(tt.wantScopes) {
				t.Fatalf("response = %+v", resp)
			}
		})
	}
}

func tok(k, client string, scopes []string) abi.TokenRequest {
	return abi.TokenRequest{Tenant: "acme", GrantType: DefaultGrantType, ClientID: client, ClientAuthenticated: true, Scopes: scopes,
		Params: map[string][]string{Param: {k}}}
}

func TestConfigureRefuses(t *testing.T) {
	for _, cfg := range []string{`{"keys":[{"sha256":"zz","subject":"s"}]}`, `{"keys":[{"sha256":"` + digest("x") + `"}]}`, `{"keys":[],"x":1}`} {
		h := plugintest.New(t)
		if err := h.Configure("apikey", []byte(cfg)); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("Configure(%s) = %v, want invalid_request", cfg, err)
		}
	}
}
