package oidc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestClaimMapperShapesIDTokenAndUserInfo runs the server with a
// claims.mapping instance (the claims extension kind) that maps the local
// dialect to the oidc one: the claims it adds and changes appear in the ID
// token and at the UserInfo endpoint, read by go-oidc, and follow the
// granted scopes; the protocol's own claims (sub) cannot be changed.
func TestClaimMapperShapesIDTokenAndUserInfo(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	yaml := `extensions:
  instances:
    - {name: authn.password, module: authn.password}
    - {name: userstore.local, module: userstore.local}
    - name: claims.mapping
      module: claims.mapping
      config:
        mappings:
          - from: local
            to: oidc
            rules:
              - {from: email, to: mail, copy: true}
              - {to: org, value: Acme}
              - {to: granted, template: "{scope}"}
              - {to: sub, value: someone-else}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	o := setupWith(t, "LATCH_CONFIG="+cfg)

	type idClaims struct {
		Sub     string `json:"sub"`
		Mail    string `json:"mail"`
		Email   string `json:"email"`
		Org     string `json:"org"`
		Granted string `json:"granted"`
		Scope   any    `json:"scope"`
	}
	run := func(t *testing.T, scopes ...string) (idClaims, idClaims) {
		t.Helper()
		web := o.web()
		web.Scopes = scopes
		q, verifier := codeFlow(t, newBrowser(t), web, "nonce-claims-01")
		tok, err := web.Exchange(ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: "web"}).Verify(ctx(), rawID)
		if err != nil {
			t.Fatal(err)
		}
		var id, ui idClaims
		if err := idt.Claims(&id); err != nil {
			t.Fatal(err)
		}
		info, err := o.provider.UserInfo(ctx(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if err := info.Claims(&ui); err != nil {
			t.Fatal(err)
		}
		if id.Sub != idt.Subject || ui.Sub != idt.Subject || id.Sub == "someone-else" {
			t.Errorf("sub changed: id %q, userinfo %q, token %q", id.Sub, ui.Sub, idt.Subject)
		}
		if id.Scope != nil || ui.Scope != nil {
			t.Errorf("scope leaked as a claim: %v %v", id.Scope, ui.Scope)
		}
		return id, ui
	}

	t.Run("Claims/WithEmailScope", func(t *testing.T) {
		id, ui := run(t, oidc.ScopeOpenID, "profile", "email")
		for name, c := range map[string]idClaims{"id token": id, "userinfo": ui} {
			if c.Mail != "alice@example.com" || c.Email != "alice@example.com" || c.Org != "Acme" || c.Granted != "openid profile email" {
				t.Errorf("%s: %+v", name, c)
			}
		}
	})
	t.Run("Claims/WithoutEmailScope", func(t *testing.T) {
		id, ui := run(t, oidc.ScopeOpenID, "profile")
		for name, c := range map[string]idClaims{"id token": id, "userinfo": ui} {
			if c.Mail != "" || c.Email != "" || c.Org != "Acme" || c.Granted != "openid profile" {
				t.Errorf("%s: %+v", name, c)
			}
		}
	})
}
