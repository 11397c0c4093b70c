package node

import (
	"encoding/json"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/store"
)

// TestSecretValues: the secrets host call answers a bundle's secret fields
// only when it was granted "secrets": a string as its text, anything else
// as its JSON; other fields are not secrets.
func TestSecretValues(t *testing.T) {
	rec := bundle.Record{Config: json.RawMessage(`{"pin":"1234","token":{"a":1},"label":"x"}`), SecretNames: []string{"pin", "token", "gone"}}
	if got := secretValues(rec, []string{abi.CapabilityKV}); got != nil {
		t.Errorf("without the grant: %v", got)
	}
	got := secretValues(rec, []string{abi.CapabilitySecrets})
	if len(got) != 2 || string(got["pin"]) != "1234" || string(got["token"]) != `{"a":1}` {
		t.Errorf("secretValues = %q", got)
	}
}

// TestFingerprintSeesInstallColumns: a change of the install columns alone
// (a new secret, a tenant) changes the table's fingerprint, so nodes
// reload.
func TestFingerprintSeesInstallColumns(t *testing.T) {
	row := store.Bundle{Name: "pin", Version: "1.0.0", State: "enabled", Manifest: []byte(`{}`),
		Install: &store.BundleInstall{Grants: []string{}, Secrets: []byte{1}}}
	before := fingerprint([]store.Bundle{row})
	for _, change := range []func(*store.BundleInstall){
		func(in *store.BundleInstall) { in.Secrets = []byte{2} },
		func(in *store.BundleInstall) { in.Tenants = []string{"acme"} },
		func(in *store.BundleInstall) { in.Config = []byte(`{"a":1}`) },
		func(in *store.BundleInstall) { in.Grants = []string{"kv"} },
	} {
		in := *row.Install
		change(&in)
		changed := row
		changed.Install = &in
		if fingerprint([]store.Bundle{changed}) == before {
			t.Errorf("the fingerprint missed a change to %+v", in)
		}
	}
}
