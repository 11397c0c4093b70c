package login

import (
	"encoding/json"
	"testing"
)

func TestWebAuthnCeremony(t *testing.T) {
	tests := []struct {
		name, data, mode string
		bad              bool
	}{
		{name: "latch form", data: `{"mode":"get","options":{"publicKey":{"challenge":"AA"}}}`, mode: "get"},
		{name: "bare creation options", data: `{"challenge":"AA","user":{"id":"AQ","name":"a"},"rp":{"id":"x"}}`, mode: "create"},
		{name: "wrapped request options", data: `{"publicKey":{"challenge":"AA","allowCredentials":[]}}`, mode: "get"},
		{name: "wrapped creation options", data: `{"publicKey":{"challenge":"AA","user":{"id":"AQ"}}}`, mode: "create"},
		{name: "no challenge", data: `{"publicKey":{}}`, bad: true},
		{name: "unknown mode without options", data: `{"mode":"sign"}`, bad: true},
		{name: "not json", data: `<xml/>`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webauthnCeremony([]byte(tt.data))
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil || got.Mode != tt.mode {
				t.Fatalf("got %+v, %v", got, err)
			}
			var out struct {
				Mode    string `json:"mode"`
				Options struct {
					PublicKey struct {
						Challenge string `json:"challenge"`
					} `json:"publicKey"`
				} `json:"options"`
			}
			if err := json.Unmarshal(got.raw, &out); err != nil || out.Mode != tt.mode || out.Options.PublicKey.Challenge != "AA" {
				t.Errorf("page data %s (%v)", got.raw, err)
			}
		})
	}
}

// FuzzWebAuthnCeremony feeds the reader of authenticators' WebAuthn
// challenge data (which WASM and go-plugin authenticators produce)
// arbitrary bytes: no panic, and what it accepts has a mode.
func FuzzWebAuthnCeremony(f *testing.F) {
	f.Add([]byte(`{"mode":"get","options":{"publicKey":{"challenge":"AA"}}}`))
	f.Add([]byte(`{"publicKey":{"challenge":"AA","user":{}}}`))
	f.Add([]byte(`{"publicKey":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := webauthnCeremony(data)
		if err == nil && c.Mode != "get" && c.Mode != "create" {
			t.Fatalf("mode %q", c.Mode)
		}
	})
}
