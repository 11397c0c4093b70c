package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/plugin"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// recorder is an AuditPublisher keeping what it is given.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Publish(e event.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return true
}

// hostEnv is a real SQLite store with tenants "acme" and "other".
type hostEnv struct {
	st    store.Store
	acme  string // tenant id
	audit *recorder
}

func newHostEnv(t *testing.T) *hostEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &hostEnv{st: st, audit: &recorder{}}
	for _, name := range []string{"acme", "other"} {
		tn, err := st.CreateTenant(ctx, store.Tenant{ID: store.NewID(), Name: name, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if name == "acme" {
			e.acme = tn.ID
		}
	}
	return e
}

func (e *hostEnv) calls(t *testing.T, grants []string, mod func(*plugin.HostOptions)) *plugin.HostCalls {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts := plugin.HostOptions{
		Plugin: "acme-otp", Grants: grants, KV: e.st, Tenants: e.st, Audit: e.audit,
		Box: box, Secrets: map[string][]byte{"api_key": []byte("s3cret")},
	}
	if mod != nil {
		mod(&opts)
	}
	h, err := plugin.NewHostCalls(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hostCall sends op with req under the scope of a call for tenant and
// decodes the answer into resp; it returns the reply's error, if any.
func hostCall(t *testing.T, h *plugin.HostCalls, tenant string, op abi.HostOp, req, resp abi.Message) *abi.Error {
	t.Helper()
	ctx := plugin.WithScope(context.Background(), &plugin.Scope{Extension: "authn.otp", Tenant: tenant, Config: json.RawMessage(`{"digits":6}`)})
	in, err := abi.AppendHostCall(nil, op, req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.HostCall(ctx, "acme-otp", in)
	if err != nil {
		t.Fatalf("HostCall(%s) failed as a call: %v", op, err)
	}
	var rep abi.HostReply
	if err := rep.UnmarshalWire(out); err != nil {
		t.Fatalf("decoding the reply to %s: %v", op, err)
	}
	if rep.Error != nil {
		return rep.Error
	}
	if resp != nil {
		if err := resp.UnmarshalWire(rep.Payload); err != nil {
			t.Fatalf("decoding the %s response: %v", op, err)
		}
	}
	return nil
}

func wantCode(t *testing.T, e *abi.Error, code string) {
	t.Helper()
	switch {
	case code == "" && e != nil:
		t.Fatalf("got error %s: %s, want success", e.Code, e.Message)
	case code != "" && e == nil:
		t.Fatalf("got success, want %s", code)
	case code != "" && e.Code != code:
		t.Fatalf("got %s (%s), want %s", e.Code, e.Message, code)
	}
}

func TestHostCallsGrants(t *testing.T) {
	env := newHostEnv(t)
	h := env.calls(t, []string{abi.CapabilityLog}, nil)
	tests := []struct {
		op  abi.HostOp
		req abi.Message
	}{
		{abi.HostOpConfigGet, &abi.ConfigGetRequest{Tenant: "acme"}},
		{abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "acme", Key: "k"}},
		{abi.HostOpSecretGet, &abi.SecretGetRequest{Name: "api_key"}},
		{abi.HostOpGetUser, &abi.GetUserRequest{Tenant: "acme", ID: "u"}},
		{abi.HostOpAudit, &abi.AuditEvent{Tenant: "acme", Action: "otp.sent"}},
		{abi.HostOpHTTP, &abi.HTTPRequest{URL: "https://example.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.op.String(), func(t *testing.T) {
			e := hostCall(t, h, "acme", tt.op, tt.req, nil)
			wantCode(t, e, abi.CodeForbidden)
			if !strings.Contains(e.Message, tt.op.Capability()) {
				t.Errorf("message %q does not name capability %q", e.Message, tt.op.Capability())
			}
		})
	}
	wantCode(t, hostCall(t, h, "acme", abi.HostOp(999), nil, nil), abi.CodeUnsupported)
}

func TestHostCallsConfigAndSecrets(t *testing.T) {
	env := newHostEnv(t)
	h := env.calls(t, []string{abi.CapabilityConfig, abi.CapabilitySecrets}, nil)
	var cfg abi.ConfigGetResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpConfigGet, &abi.ConfigGetRequest{Tenant: "acme"}, &cfg), "")
	if string(cfg.Config) != `{"digits":6}` {
		t.Errorf("config = %s", cfg.Config)
	}
	var sec abi.SecretGetResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpSecretGet, &abi.SecretGetRequest{Tenant: "acme", Name: "api_key"}, &sec), "")
	if string(sec.Value) != "s3cret" {
		t.Errorf("secret = %q", sec.Value)
	}
	wantCode(t, hostCall(t, h, "acme", abi.HostOpSecretGet, &abi.SecretGetRequest{Name: "nope"}, nil), abi.CodeForbidden) // tenant "" from a call for acme
	e := hostCall(t, h, "acme", abi.HostOpSecretGet, &abi.SecretGetRequest{Tenant: "acme", Name: "nope"}, nil)
	wantCode(t, e, abi.CodeNotFound)
	wantCode(t, hostCall(t, h, "acme", abi.HostOpConfigGet, &abi.ConfigGetRequest{Tenant: "other"}, nil), abi.CodeForbidden)
	if _, err := plugin.NewHostCalls(plugin.HostOptions{Secrets: map[string][]byte{"a": {1}}}); err == nil {
		t.Error("secrets without a box were accepted")
	}
}

func TestHostCallsKV(t *testing.T) {
	env := newHostEnv(t)
	h := env.calls(t, []string{abi.CapabilityKV}, nil)
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVSet, &abi.KVSetRequest{Tenant: "acme", Key: "otp:1", Value: []byte("123456")}, nil), "")
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVSet, &abi.KVSetRequest{Tenant: "acme", Key: "otp:2", Value: []byte("x"), TTLMillis: 60000}, nil), "")
	var got abi.KVGetResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "acme", Key: "otp:1"}, &got), "")
	if !got.Found || string(got.Value) != "123456" {
		t.Errorf("kv.get = %+v", got)
	}
	// Stored under the plugin id and the tenant id.
	if e, err := env.st.KVGet(context.Background(), "acme-otp", env.acme, "otp:1"); err != nil || string(e.Value) != "123456" {
		t.Errorf("store holds %+v, %v", e, err)
	}
	var list abi.KVListResponse
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVList, &abi.KVListRequest{Tenant: "acme", Prefix: "otp:", Limit: 1}, &list), "")
	if len(list.Entries) != 1 || list.Entries[0].Key != "otp:1" || list.Next == "" {
		t.Errorf("kv.list page 1 = %+v", list)
	}
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVDelete, &abi.KVDeleteRequest{Tenant: "acme", Key: "otp:1"}, nil), "")
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVDelete, &abi.KVDeleteRequest{Tenant: "acme", Key: "otp:1"}, nil), "")
	got = abi.KVGetResponse{}
	wantCode(t, hostCall(t, h, "acme", abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "acme", Key: "otp:1"}, &got), "")
	if got.Found {
		t.Error("deleted key still found")
	}

	tests := []struct {
		name string
		req  abi.Message
		op   abi.HostOp
		code string
	}{
		{"other tenant", &abi.KVGetRequest{Tenant: "other", Key: "k"}, abi.HostOpKVGet, abi.CodeForbidden},
		{"long key", &abi.KVGetRequest{Tenant: "acme", Key: strings.Repeat("k", plugin.MaxKVKeyBytes+1)}, abi.HostOpKVGet, abi.CodeInvalidRequest},
		{"empty key", &abi.KVSetRequest{Tenant: "acme"}, abi.HostOpKVSet, abi.CodeInvalidRequest},
		{"big value", &abi.KVSetRequest{Tenant: "acme", Key: "k", Value: make([]byte, plugin.MaxKVValueBytes+1)}, abi.HostOpKVSet, abi.CodeInvalidRequest},
		{"negative ttl", &abi.KVSetRequest{Tenant: "acme", Key: "k", TTLMillis: -1}, abi.HostOpKVSet, abi.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, hostCall(t, h, "acme", tt.op, tt.req, nil), tt.code)
		})
	}
	// A lifecycle call (no tenant in scope) names the tenant; an unknown
	// one is not found.
	wantCode(t, hostCall(t, h, "", abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "ghost", Key: "k"}, nil), abi.CodeNotFound)
}

func TestHostCallsAudit(t *testing.T) {
	env := newHostEnv(t)
	h := env.calls(t, []string{abi.CapabilityAudit}, nil)
	wantCode(t, hostCall(t, h, "acme", abi.HostOpAudit, &abi.AuditEvent{Tenant: "acme", Action: "otp.sent", Subject: "u-1", Details: map[string]any{"channel": "sms"}}, nil), "")
	wantCode(t, hostCall(t, h, "acme", abi.HostOpAudit, &abi.AuditEvent{Tenant: "acme", Action: "Bad Action"}, nil), abi.CodeInvalidRequest)
	wantCode(t, hostCall(t, h, "acme", abi.HostOpAudit, &abi.AuditEvent{Tenant: "acme", Action: "a.b", Outcome: "maybe"}, nil), abi.CodeInvalidRequest)
	if len(env.audit.events) != 1 {
		t.Fatalf("%d events published, want 1", len(env.audit.events))
	}
	ev := env.audit.events[0]
	if ev.Actor != "plugin:acme-otp" || ev.Action != "plugin.otp.sent" || ev.Tenant != env.acme || ev.Target != "user:u-1" ||
		ev.Outcome != event.OutcomeSuccess || ev.Detail["plugin"] != "acme-otp" || ev.Detail["extension"] != "authn.otp" || ev.Detail["channel"] != "sms" {
		t.Errorf("event = %+v", ev)
	}
}

func TestHostCallsHTTP(t *testing.T) {
	env := newHostEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("a"), 4096))
		default:
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Echo", r.Header.Get("X-Sig"))
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(r.Method + " " + string(body))) //nolint:gosec // G705: a test server echoing plain text
		}
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	granted := env.calls(t, []string{abi.CapabilityHTTP}, func(o *plugin.HostOptions) {
		o.HTTP = plugin.HTTPOptions{Hosts: []string{"http://" + addr.String(), "api.example.com"}, MaxResponseBytes: 1000}
	})
	byName := env.calls(t, []string{abi.CapabilityHTTP}, func(o *plugin.HostOptions) {
		o.HTTP = plugin.HTTPOptions{Hosts: []string{fmt.Sprintf("http://localhost:%d", addr.Port())}}
	})

	var resp abi.HTTPResponse
	wantCode(t, hostCall(t, granted, "acme", abi.HostOpHTTP, &abi.HTTPRequest{Method: "POST", URL: srv.URL + "/echo", Body: []byte("hi"), Headers: map[string][]string{"X-Sig": {"abc"}}}, &resp), "")
	if resp.Status != 200 || string(resp.Body) != "POST hi" || resp.Headers["X-Echo"][0] != "abc" {
		t.Errorf("response = %d %q %v", resp.Status, resp.Body, resp.Headers)
	}
	resp = abi.HTTPResponse{}
	wantCode(t, hostCall(t, granted, "acme", abi.HostOpHTTP, &abi.HTTPRequest{URL: srv.URL + "/redirect"}, &resp), "")
	if resp.Status != http.StatusFound {
		t.Errorf("redirect was followed: status %d", resp.Status)
	}
	resp = abi.HTTPResponse{}
	wantCode(t, hostCall(t, granted, "acme", abi.HostOpHTTP, &abi.HTTPRequest{URL: srv.URL + "/big"}, &resp), "")
	if len(resp.Body) != 1000 {
		t.Errorf("body of %d bytes, want it cut at 1000", len(resp.Body))
	}

	tests := []struct {
		name string
		h    *plugin.HostCalls
		url  string
		code string
	}{
		{"host not granted", granted, "https://evil.example.org/", abi.CodeForbidden},
		{"other port", granted, fmt.Sprintf("http://%s:%d/", addr.Addr(), addr.Port()+1), abi.CodeForbidden},
		{"https to an http grant", granted, "https://" + addr.String() + "/", abi.CodeForbidden},
		{"metadata address", granted, "http://169.254.169.254/latest/meta-data", abi.CodeForbidden},
		{"credentials", granted, "https://user:pw@api.example.com/", abi.CodeInvalidRequest},
		{"not absolute", granted, "/relative", abi.CodeInvalidRequest},
		{"ftp", granted, "ftp://api.example.com/", abi.CodeInvalidRequest},
		{"name resolving to loopback", byName, srv.URL[:len("http://")] + fmt.Sprintf("localhost:%d/", addr.Port()), abi.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, hostCall(t, tt.h, "acme", abi.HostOpHTTP, &abi.HTTPRequest{URL: tt.url}, nil), tt.code)
		})
	}
	if _, err := plugin.NewHostCalls(plugin.HostOptions{Grants: []string{abi.CapabilityHTTP}, HTTP: plugin.HTTPOptions{Hosts: []string{"*.*.example.com"}}}); err == nil {
		t.Error("a bad allow-list entry was accepted")
	}
}

// FuzzHostCall feeds guest bytes to the host services: every input gets a
// HostReply, never a failed call or a panic.
func FuzzHostCall(f *testing.F) {
	for _, op := range []abi.HostOp{abi.HostOpConfigGet, abi.HostOpKVGet, abi.HostOpSecretGet, abi.HostOpAudit, abi.HostOpHTTP} {
		b, _ := abi.AppendHostCall(nil, op, nil)
		f.Add(b)
	}
	seed, _ := abi.AppendHostCall(nil, abi.HostOpKVGet, &abi.KVGetRequest{Tenant: "acme", Key: "k"})
	f.Add(seed)
	f.Add([]byte{0xff, 0xff, 0xff})
	h, err := plugin.NewHostCalls(plugin.HostOptions{Plugin: "p", Grants: []string{abi.CapabilityConfig, abi.CapabilityKV, abi.CapabilityHTTP},
		HTTP: plugin.HTTPOptions{Hosts: []string{"api.example.com"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var call abi.HostCall
		if call.UnmarshalWire(in) == nil && call.Op == abi.HostOpHTTP {
			return // would dial out
		}
		out, err := h.HostCall(context.Background(), "p", in)
		if err != nil {
			t.Fatalf("HostCall failed as a call: %v", err)
		}
		var rep abi.HostReply
		if err := rep.UnmarshalWire(out); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
	})
}
