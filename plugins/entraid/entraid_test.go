package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"

func token() map[string]any {
	return map[string]any{
		"oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": tid, "name": "Alice Example",
		"preferred_username": "alice@contoso.com", "upn": "alice@contoso.com",
		"groups": []any{"g-1", "g-2"}, "roles": []any{"Reader"}, "aio": "xyz", "uti": "abc", "custom": "kept",
	}
}

func TestMap(t *testing.T) {
	iss := issuerPrefix + tid + "/v2.0"
	tests := []struct {
		name   string
		config string
		req    abi.MapRequest
		want   map[string]any
	}{
		{
			name:   "entra token",
			config: `{"group_names":{"g-1":"engineering"},"upn_as_email":true}`,
			req:    abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: iss, Claims: token()},
			want: map[string]any{"object_id": "00000000-0000-0000-66f3-3332eca7ea81", "directory_id": tid, "name": "Alice Example",
				"username": "alice@contoso.com", "upn": "alice@contoso.com", "email": "alice@contoso.com",
				"groups": []any{"engineering", "g-2"}, "roles": []any{"Reader"}, "custom": "kept"},
		},
		{
			name:   "drop unmapped",
			config: `{"drop_unmapped":true}`,
			req:    abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: iss, Claims: map[string]any{"tid": tid, "custom": "x", "upn": "a@b"}},
			want:   map[string]any{"directory_id": tid, "upn": "a@b", "username": "a@b"},
		},
		{
			name:   "tenant not listed passes through",
			config: `{"tenant_ids":["11111111-1111-1111-1111-111111111111"]}`,
			req:    abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: iss, Claims: map[string]any{"aio": "x"}},
			want:   map[string]any{"aio": "x"},
		},
		{
			name:   "other issuer passes through",
			config: `{}`,
			req:    abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Issuer: "https://accounts.example.com", Claims: map[string]any{"aio": "x"}},
			want:   map[string]any{"aio": "x"},
		},
		{
			name:   "other direction passes through",
			config: `{}`,
			req:    abi.MapRequest{From: abi.DialectLocal, To: abi.DialectOIDC, Issuer: iss, Claims: map[string]any{"oid": "x"}},
			want:   map[string]any{"oid": "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			if err := h.Configure("entraid", []byte(tt.config)); err != nil {
				t.Fatal(err)
			}
			tt.req.Tenant = "acme"
			resp, err := h.MapClaims("entraid", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(resp.Claims, tt.want) {
				t.Fatalf("claims:\n got %#v\nwant %#v", resp.Claims, tt.want)
			}
		})
	}
}

func TestConfigureRefuses(t *testing.T) {
	h := plugintest.New(t)
	if err := h.Configure("entraid", []byte(`{"tenants":[]}`)); !errors.Is(err, plugin.ErrInvalidRequest) {
		t.Fatalf("err = %v", err)
	}
}
