//go:build !wasip1

package host_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// remembered is an authenticator that uses the host: it counts attempts
// per flow in the key-value space and checks the code against a secret.
type remembered struct{}

func (remembered) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	key := "attempts:" + req.FlowID
	v, _, err := host.KVGet(req.Tenant, key)
	if err != nil {
		return abi.AuthenticateResponse{}, fmt.Errorf("reading attempts: %w", err)
	}
	v = append(v, 'x')
	if err := host.KVSet(req.Tenant, key, v, time.Minute); err != nil {
		return abi.AuthenticateResponse{}, fmt.Errorf("counting attempts: %w", err)
	}
	secret, err := host.Secret(req.Tenant, "code")
	if err != nil {
		return abi.AuthenticateResponse{}, fmt.Errorf("reading the code: %w", err)
	}
	if len(req.Params["code"]) == 0 || req.Params["code"][0] != string(secret) {
		return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
	}
	return authn.Authenticated("u-1", nil), nil
}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{
		Name:    "host-test",
		Version: "0.0.1",
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityConfig}, {Name: abi.CapabilityKV}, {Name: abi.CapabilitySecrets},
			{Name: abi.CapabilityUserLookup}, {Name: abi.CapabilityAudit},
			{Name: abi.CapabilityHTTP, Hosts: []string{"api.example.com", "*.example.org:8443"}},
		},
	})
	authn.Register("remembered", remembered{})
}

func TestHostCallsFromAnOperation(t *testing.T) {
	h := plugintest.New(t)
	h.SetSecret("acme", "code", []byte("424242"))
	req := abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Params: map[string][]string{"code": {"1"}}}
	if resp, err := h.Authenticate("remembered", req); err != nil || resp.Outcome != abi.OutcomeNotAuthenticated {
		t.Fatalf("wrong code: %+v, %v", resp, err)
	}
	req.Params["code"][0] = "424242"
	if resp, err := h.Authenticate("remembered", req); err != nil || resp.Outcome != abi.OutcomeAuthenticated {
		t.Fatalf("right code: %+v, %v", resp, err)
	}
	if v, ok := h.KV("acme", "attempts:f-1"); !ok || string(v) != "xx" {
		t.Errorf("attempts %q, %v", v, ok)
	}
	// A secret of another tenant is not found: the failure keeps the code.
	req.Tenant = "other"
	resp, err := h.Authenticate("remembered", req)
	if !errors.Is(err, plugin.ErrNotFound) || resp.Outcome != abi.OutcomeFailure {
		t.Errorf("missing secret: %+v, %v", resp, err)
	}
}

func TestKV(t *testing.T) {
	h := plugintest.New(t)
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	h.SetNow(start)
	h.Do(func() {
		for _, k := range []string{"b", "a", "c", "x:1"} {
			if err := host.KVSet("acme", k, []byte("v"+k), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := host.KVSet("acme", "ttl", []byte("soon gone"), 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		v, found, err := host.KVGet("acme", "a")
		if err != nil || !found || string(v) != "va" {
			t.Errorf("KVGet(a) = %q, %v, %v", v, found, err)
		}
		if _, found, _ := host.KVGet("other", "a"); found {
			t.Error("another tenant sees the key")
		}
		page, err := host.KVList(abi.KVListRequest{Tenant: "acme", Limit: 2})
		if err != nil || len(page.Entries) != 2 || page.Entries[0].Key != "a" || page.Entries[1].Key != "b" || page.Next == "" {
			t.Errorf("first page %+v, %v", page, err)
		}
		page, err = host.KVList(abi.KVListRequest{Tenant: "acme", Limit: 10, Cursor: page.Next})
		if err != nil || len(page.Entries) != 3 || page.Entries[0].Key != "c" || page.Next != "" {
			t.Errorf("second page %+v, %v", page, err)
		}
		page, _ = host.KVList(abi.KVListRequest{Tenant: "acme", Prefix: "x:"})
		if len(page.Entries) != 1 || string(page.Entries[0].Value) != "vx:1" {
			t.Errorf("prefix page %+v", page)
		}
		if err := host.KVDelete("acme", "a"); err != nil {
			t.Error(err)
		}
		if err := host.KVDelete("acme", "never-there"); err != nil {
			t.Errorf("deleting a missing key: %v", err)
		}
		if _, found, _ := host.KVGet("acme", "a"); found {
			t.Error("a deleted key is found")
		}
		if err := host.KVSet("acme", string(bytes.Repeat([]byte("k"), 257)), nil, 0); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("a 257-byte key: %v", err)
		}
		if err := host.KVSet("acme", "big", make([]byte, 64<<10+1), 0); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("a value over 64 KiB: %v", err)
		}
	})
	if _, ok := h.KV("acme", "ttl"); !ok {
		t.Error("the TTL value expired early")
	}
	h.SetNow(start.Add(1500 * time.Millisecond))
	if _, ok := h.KV("acme", "ttl"); ok {
		t.Error("the TTL value outlived its TTL")
	}
}

func TestSecretAndConfig(t *testing.T) {
	h := plugintest.New(t)
	h.SetSecret("", "api_key", []byte("k-1"))
	h.SetConfig("acme", []byte(`{"sender":"ACME"}`))
	h.Do(func() {
		if v, err := host.Secret("", "api_key"); err != nil || string(v) != "k-1" {
			t.Errorf("Secret = %q, %v", v, err)
		}
		_, err := host.Secret("acme", "api_key")
		var he *host.Error
		if !errors.Is(err, plugin.ErrNotFound) || !errors.As(err, &he) || he.Op != abi.HostOpSecretGet {
			t.Errorf("a tenant without the secret: %v", err)
		}
		if err != nil && err.Error() != "host: secrets.get: not_found: no secret api_key" {
			t.Errorf("error text %q", err)
		}
		if c, err := host.Config("acme"); err != nil || string(c) != `{"sender":"ACME"}` {
			t.Errorf("Config = %s, %v", c, err)
		}
		if c, err := host.Config("none"); err != nil || len(c) != 0 {
			t.Errorf("Config without one = %s, %v", c, err)
		}
	})
}

func TestUserLookupAndAudit(t *testing.T) {
	h := plugintest.New(t)
	alice := abi.User{ID: "u-1", Username: "alice", Email: "Alice@example.com", Enabled: true, Attributes: map[string]any{"dept": "sales"}}
	h.SetUser("acme", alice)
	h.SetUser("acme", abi.User{ID: "u-2", Username: "bob"})
	h.Do(func() {
		if u, err := host.LookupUser("acme", "u-1"); err != nil || !reflect.DeepEqual(u, alice) {
			t.Errorf("LookupUser = %+v, %v", u, err)
		}
		if _, err := host.LookupUser("acme", "u-9"); !errors.Is(err, plugin.ErrNotFound) {
			t.Errorf("LookupUser of a stranger: %v", err)
		}
		r, err := host.FindUsers(abi.FindUsersRequest{Tenant: "acme", Email: "alice@EXAMPLE.com", Attributes: map[string]string{"dept": "sales"}})
		if err != nil || len(r.Users) != 1 || r.Users[0].ID != "u-1" {
			t.Errorf("FindUsers = %+v, %v", r, err)
		}
		ev := abi.AuditEvent{Tenant: "acme", Action: "otp.sent", Subject: "u-1", Outcome: "success", Details: map[string]any{"channel": "sms"}}
		if err := host.Audit(ev); err != nil {
			t.Error(err)
		}
	})
	if got := h.Audits(); len(got) != 1 || got[0].Action != "otp.sent" || got[0].Details["channel"] != "sms" {
		t.Errorf("audits %+v", got)
	}
}

func TestHTTP(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		handler  func(abi.HTTPRequest) (abi.HTTPResponse, error)
		wantCode string
		wantBody string
	}{
		{name: "granted host", url: "https://api.example.com/v1/send", wantBody: "ok POST"},
		{name: "granted host, explicit port 443", url: "https://api.example.com:443/x", wantBody: "ok POST"},
		{name: "wildcard with port", url: "https://sms.eu.example.org:8443/x", wantBody: "ok POST"},
		{name: "wildcard, wrong port", url: "https://sms.example.org/x", wantCode: abi.CodeForbidden},
		{name: "wildcard does not match the apex", url: "https://example.org:8443/x", wantCode: abi.CodeForbidden},
		{name: "host not granted", url: "https://evil.example.net/steal", wantCode: abi.CodeForbidden},
		{name: "plain http to a host granted for https", url: "http://api.example.com/", wantCode: abi.CodeForbidden},
		{name: "not http", url: "ftp://api.example.com/", wantCode: abi.CodeInvalidRequest},
		{name: "transport failure", url: "https://api.example.com/", wantCode: abi.CodeTimeout,
			handler: func(abi.HTTPRequest) (abi.HTTPResponse, error) { return abi.HTTPResponse{}, plugin.ErrTimeout }},
		{name: "no handler", url: "https://api.example.com/", wantCode: abi.CodeUnavailable, handler: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			handler := tt.handler
			if handler == nil && tt.name != "no handler" {
				handler = func(req abi.HTTPRequest) (abi.HTTPResponse, error) {
					return abi.HTTPResponse{Status: 200, Headers: map[string][]string{"X-Id": {"1"}}, Body: []byte("ok " + req.Method)}, nil
				}
			}
			if handler != nil {
				h.HandleHTTP(handler)
			}
			h.Do(func() {
				resp, err := host.HTTP(abi.HTTPRequest{Method: "POST", URL: tt.url, Body: []byte("hi")})
				if tt.wantCode != "" {
					var pe *plugin.Error
					if !errors.As(err, &pe) || pe.Code != tt.wantCode {
						t.Errorf("error %v, want code %s", err, tt.wantCode)
					}
					return
				}
				if err != nil || resp.Status != 200 || string(resp.Body) != tt.wantBody || resp.Headers["X-Id"][0] != "1" {
					t.Errorf("HTTP = %+v, %v", resp, err)
				}
			})
		})
	}
}
