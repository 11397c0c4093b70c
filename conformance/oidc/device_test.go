package oidc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// pollDevice asks the token endpoint once for the token of a device code
// and returns the status and the decoded answer.
func pollDevice(t *testing.T, tokenURL, clientID, deviceCode string) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {deviceCode}}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token endpoint answer is not JSON: %d %s", resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// approveOnDevicePage signs alice in at the verification URI in b, enters
// the user code (unless the URI carries it), and answers the consent page
// with decision. It returns the final page.
func approveOnDevicePage(t *testing.T, b *browser, verificationURI, userCode, decision string) page {
	t.Helper()
	p := b.Get(verificationURI, "")
	if strings.Contains(p.Body, `name="password"`) {
		p = loginAt(t, b, p, alicePass, "")
	}
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="user_code"`) {
		t.Fatalf("want the user code page, got %s\n%s", p, p.Body)
	}
	values := map[string]string{}
	if userCode != "" {
		values["user_code"] = userCode
	}
	p = b.Submit(p, values, "")
	if !strings.Contains(p.Body, `name="decision"`) {
		return p
	}
	return b.Submit(p, map[string]string{"decision": decision}, "")
}

// TestDeviceAuthorizationGrant runs RFC 8628 against the live server with
// x/oauth2's device flow client and a cookie-keeping browser.
func TestDeviceAuthorizationGrant(t *testing.T) {
	o := setup(t)
	for _, c := range []map[string]any{
		{
			"client_id": "tv", "name": "Living Room TV", "public": true, "token_endpoint_auth_method": "none",
			"grant_types": []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
			"scopes":      []string{"openid", "profile"}, "enabled": true,
		},
		{
			"client_id": "tv2", "name": "Kitchen TV", "public": true, "token_endpoint_auth_method": "none",
			"grant_types": []string{"urn:ietf:params:oauth:grant-type:device_code"},
			"scopes":      []string{"openid"}, "enabled": true,
		},
	} {
		if code := o.Admin(http.MethodPost, "/clients", c, nil); code != http.StatusCreated {
			t.Fatalf("creating client %v: %d", c["client_id"], code)
		}
	}
	var meta map[string]any
	if err := o.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	deviceURL, _ := meta["device_authorization_endpoint"].(string)
	tokenURL := o.provider.Endpoint().TokenURL
	tv := &oauth2.Config{
		ClientID: "tv", Scopes: []string{oidc.ScopeOpenID, "profile"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: deviceURL, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}

	t.Run("Config/DiscoveryListsDeviceGrant", func(t *testing.T) {
		grants, _ := meta["grant_types_supported"].([]any)
		if deviceURL != o.URL+"/oauth2/device_authorization" || !containsAny(grants, "urn:ietf:params:oauth:grant-type:device_code") {
			t.Errorf("discovery: %v %v", deviceURL, grants)
		}
	})

	t.Run("Device/ApproveWithConsent", func(t *testing.T) {
		da, err := tv.DeviceAuth(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if da.UserCode == "" || da.VerificationURI != o.URL+"/device" || da.VerificationURIComplete == "" || da.Interval != 5 {
			t.Fatalf("device authorization response: %+v", da)
		}
		// Before the user acts: authorization_pending, then slow_down
		// for polling again at once (RFC 8628 section 3.5).
		if status, m := pollDevice(t, tokenURL, "tv", da.DeviceCode); status != http.StatusBadRequest || m["error"] != "authorization_pending" {
			t.Fatalf("first poll: %d %v", status, m)
		}
		if status, m := pollDevice(t, tokenURL, "tv", da.DeviceCode); status != http.StatusBadRequest || m["error"] != "slow_down" {
			t.Fatalf("second poll: %d %v", status, m)
		}
		// Another client cannot use the device code.
		if status, m := pollDevice(t, tokenURL, "tv2", da.DeviceCode); m["error"] != "invalid_grant" || status >= 500 {
			t.Fatalf("poll as another client: %d %v", status, m)
		}
		b := newBrowser(t)
		done := approveOnDevicePage(t, b, da.VerificationURI, da.UserCode, "allow")
		if done.Status != http.StatusOK || strings.Contains(done.Body, `name="user_code"`) {
			t.Fatalf("after approving: %s\n%s", done, done.Body)
		}
		// x/oauth2 polls after the (grown) interval.
		c, cancel := context.WithTimeout(ctx(), 60*time.Second)
		defer cancel()
		tok, err := tv.DeviceAccessToken(c, da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := o.provider.Verifier(&oidc.Config{ClientID: "tv"}).Verify(ctx(), rawID)
		if err != nil {
			t.Fatalf("verifying the ID token: %v", err)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		ui, err := o.provider.UserInfo(ctx(), oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != idt.Subject {
			t.Fatalf("userinfo: %v %+v", err, ui)
		}
		if tok.RefreshToken == "" {
			t.Error("no refresh token for a client with the refresh_token grant")
		}
		// A device code is used once.
		if status, m := pollDevice(t, tokenURL, "tv", da.DeviceCode); m["error"] != "invalid_grant" || status >= 500 {
			t.Fatalf("second exchange: %d %v", status, m)
		}
		// The refresh token works.
		tok.Expiry = time.Now().Add(-time.Minute)
		if _, err := tv.TokenSource(ctx(), tok).Token(); err != nil {
			t.Fatalf("refreshing: %v", err)
		}
	})

	t.Run("Device/Denied", func(t *testing.T) {
		// tv2: alice has not consented to it before.
		tv2 := &oauth2.Config{ClientID: "tv2", Scopes: []string{oidc.ScopeOpenID}, Endpoint: tv.Endpoint}
		da, err := tv2.DeviceAuth(ctx())
		if err != nil {
			t.Fatal(err)
		}
		// verification_uri_complete carries the code.
		approveOnDevicePage(t, newBrowser(t), da.VerificationURIComplete, "", "deny")
		if status, m := pollDevice(t, tokenURL, "tv2", da.DeviceCode); status != http.StatusBadRequest || m["error"] != "access_denied" {
			t.Fatalf("poll after denial: %d %v", status, m)
		}
	})

	t.Run("Device/Negative/WrongUserCode", func(t *testing.T) {
		if _, err := tv.DeviceAuth(ctx()); err != nil {
			t.Fatal(err)
		}
		p := approveOnDevicePage(t, newBrowser(t), o.URL+"/device", "BCDF-GHJK", "allow")
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `name="user_code"`) {
			t.Fatalf("want the user code page again with an error, got %s", p)
		}
	})

	t.Run("Device/Negative/UserCodeBruteForce", func(t *testing.T) {
		// RFC 8628 section 5.1: wrong entries are bounded per session.
		da, err := tv.DeviceAuth(ctx())
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p := b.Get(o.URL+"/device", "")
		p = loginAt(t, b, p, alicePass, "")
		for i := range 5 {
			p = b.Submit(p, map[string]string{"user_code": fmt.Sprintf("BCDF-GH%02d", i)}, "")
			if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `name="user_code"`) {
				t.Fatalf("wrong code %d: %s", i, p)
			}
		}
		// Now even the right code is refused, with a page that says why.
		p = b.Submit(p, map[string]string{"user_code": da.UserCode}, "")
		if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many wrong codes") {
			t.Fatalf("after 5 wrong codes: %s\n%s", p, p.Body)
		}
		// Another session (another user's browser) is not locked out.
		done := approveOnDevicePage(t, newBrowser(t), da.VerificationURI, da.UserCode, "allow")
		if done.Status != http.StatusOK || strings.Contains(done.Body, `name="user_code"`) {
			t.Fatalf("another session: %s\n%s", done, done.Body)
		}
	})

	t.Run("Device/Negative/UnknownDeviceCode", func(t *testing.T) {
		if status, m := pollDevice(t, tokenURL, "tv", "not-a-device-code"); m["error"] != "invalid_grant" || status >= 500 {
			t.Fatalf("poll: %d %v", status, m)
		}
	})

	t.Run("Device/Negative/ClientNotRegisteredForGrant", func(t *testing.T) {
		cfg := &oauth2.Config{ClientID: "spa", Scopes: []string{"openid"}, Endpoint: oauth2.Endpoint{DeviceAuthURL: deviceURL, AuthStyle: oauth2.AuthStyleInParams}}
		_, err := cfg.DeviceAuth(ctx())
		wantOAuthError(t, err, "unauthorized_client")
	})

	t.Run("Device/Negative/ScopeNotAllowed", func(t *testing.T) {
		cfg := &oauth2.Config{ClientID: "tv2", Scopes: []string{"openid", "email"}, Endpoint: oauth2.Endpoint{DeviceAuthURL: deviceURL, AuthStyle: oauth2.AuthStyleInParams}}
		_, err := cfg.DeviceAuth(ctx())
		wantOAuthError(t, err, "invalid_scope")
	})
}
