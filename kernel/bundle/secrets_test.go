package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// secretManifest is a bundle whose configuration has a secret field.
func secretManifest(version string) bundle.Manifest {
	m := manifest(version)
	m.ConfigSchema = json.RawMessage(`{"type":"object","properties":{
		"pin":{"type":"string","minLength":4,"writeOnly":true},
		"label":{"type":"string"}},"required":["pin"],"additionalProperties":false}`)
	return m
}

// TestSecretConfig: a secret field's value is sealed in its own column,
// absent from the stored JSON and the listing (masked), kept across an
// upgrade and a configure that leave it out or send the mask, and handed
// whole to the trial load and to FullConfig.
func TestSecretConfig(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	priv, pub := key(t)
	trust, _ := bundle.NewTrust([]string{pub}, false)
	mk := bytes.Repeat([]byte{7}, secret.MasterKeySize)
	box, err := bundle.NewSecretBox(mk)
	if err != nil {
		t.Fatal(err)
	}
	var trialConfig string
	m := &bundle.Manager{Store: st, Trust: trust, Box: box, Check: func(_ context.Context, _ *bundle.Bundle, rec bundle.Record) error {
		trialConfig = string(rec.Config)
		return nil
	}}
	grants := []string{"http", "log"}
	const pin = "7319-very-secret"

	if got := secretManifest("1.0.0").SecretFields(); len(got) != 1 || got[0] != "pin" {
		t.Fatalf("SecretFields = %v", got)
	}
	rec, err := m.Install(ctx, bundle.Request{Archive: pack(t, secretManifest("1.0.0"), priv), Grants: grants,
		Config: json.RawMessage(`{"pin":"` + pin + `","label":"front desk"}`)})
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if !strings.Contains(trialConfig, pin) {
		t.Errorf("the trial load got %s, want the secret in it", trialConfig)
	}
	noPlaintext := func(what string) {
		t.Helper()
		row, err := st.GetBundle(ctx, "pin", rec.Manifest.Version)
		if err != nil {
			t.Fatal(err)
		}
		for col, b := range map[string][]byte{"manifest": row.Manifest, "config": row.Install.Config, "secrets": row.Install.Secrets} {
			if bytes.Contains(b, []byte(pin)) {
				t.Errorf("%s: the stored %s column holds the plaintext secret", what, col)
			}
		}
		if len(row.Install.Secrets) == 0 {
			t.Errorf("%s: no sealed secrets stored", what)
		}
	}
	noPlaintext("after Install")
	if strings.Contains(string(rec.Config), pin) {
		t.Errorf("Install returned the secret: %s", rec.Config)
	}

	vs, err := m.Versions(ctx)
	if err != nil || len(vs) != 1 {
		t.Fatalf("Versions = %v, %v", vs, err)
	}
	masked := string(vs[0].Record.MaskedConfig())
	if strings.Contains(masked, pin) || !strings.Contains(masked, `"pin":"`+bundle.Mask+`"`) || !strings.Contains(masked, "front desk") {
		t.Errorf("MaskedConfig = %s", masked)
	}
	full, secrets, err := m.FullConfig(vs[0].Record)
	if err != nil || !strings.Contains(string(full), pin) || string(secrets["pin"]) != `"`+pin+`"` {
		t.Errorf("FullConfig = %s, %v, %v", full, secrets, err)
	}

	// Configure without the secret, then with the mask: the secret stays.
	if _, err := m.Configure(ctx, "pin", json.RawMessage(`{"label":"lobby"}`), nil); err != nil {
		t.Fatalf("Configure without the secret: %v", err)
	}
	if _, err := m.Configure(ctx, "pin", json.RawMessage(`{"label":"lobby 2","pin":"`+bundle.Mask+`"}`), nil); err != nil {
		t.Fatalf("Configure with the mask: %v", err)
	}
	noPlaintext("after Configure")
	// An upgrade keeps it too.
	up, err := m.Upgrade(ctx, bundle.Request{Archive: pack(t, secretManifest("1.1.0"), priv)})
	if err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if up.PreviousVersion != "1.0.0" {
		t.Errorf("PreviousVersion = %q", up.PreviousVersion)
	}
	vs, _ = m.Versions(ctx)
	for _, v := range vs {
		if v.Version != "1.1.0" {
			continue
		}
		full, _, err := m.FullConfig(v.Record)
		if err != nil || !strings.Contains(string(full), pin) || !strings.Contains(string(full), "lobby 2") {
			t.Errorf("after upgrade FullConfig = %s, %v", full, err)
		}
	}
	// A bad secret is refused without quoting it.
	_, err = m.Configure(ctx, "pin", json.RawMessage(`{"pin":"x1"}`), nil)
	if !errors.Is(err, bundle.ErrInvalidConfig) || strings.Contains(err.Error(), "x1") {
		t.Errorf("Configure with a short secret: %v", err)
	}

	// Another master key cannot open it; a manager without a box refuses.
	other, _ := bundle.NewSecretBox(bytes.Repeat([]byte{8}, secret.MasterKeySize))
	if _, _, err := (&bundle.Manager{Store: st, Box: other}).FullConfig(vs[0].Record); err == nil {
		t.Error("another master key opened the secrets")
	}
	if _, err := (&bundle.Manager{Store: st, Trust: trust}).Install(ctx, bundle.Request{Archive: pack(t, secretManifest("1.0.0"), priv),
		Grants: grants, Config: json.RawMessage(`{"pin":"12345"}`)}); err == nil {
		t.Error("a manager without a box stored a secret")
	}
}

// TestRecordOfLegacyRow: a row without install columns (written by an
// older build) is read from its JSON.
func TestRecordOfLegacyRow(t *testing.T) {
	raw := []byte(`{"manifest":{"name":"pin","version":"1.0.0"},"grants":["kv"],"config":{"pin":"1234"},"tenants":["acme"],"signer":"ab"}`)
	rec, err := bundle.RecordOf(store.Bundle{Manifest: raw})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Manifest.Name != "pin" || rec.Grants[0] != "kv" || rec.Tenants[0] != "acme" || rec.Signer != "ab" || string(rec.Config) != `{"pin":"1234"}` {
		t.Errorf("RecordOf(legacy) = %+v", rec)
	}
	rec, err = bundle.RecordOf(store.Bundle{Manifest: raw, Install: &store.BundleInstall{Grants: []string{"http"}, Config: []byte(`{}`), PreviousVersion: "0.9.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Grants[0] != "http" || rec.Tenants != nil || string(rec.Config) != `{}` || rec.PreviousVersion != "0.9.0" {
		t.Errorf("RecordOf(columns) = %+v", rec)
	}
}

// TestNativeModules: Pack writes each binary's digest into the manifest,
// Read checks it, and a manager refuses a bundle with no module for its
// platform.
func TestNativeModules(t *testing.T) {
	priv, pub := key(t)
	m := manifest("1.0.0")
	m.Modules = bundle.Modules{Native: []bundle.Native{{OS: "linux", Arch: "amd64", Path: "bin/pin-linux-amd64"}}}
	bin := []byte("\x7fELF not really")
	a, err := bundle.Pack(m, map[string][]byte{"bin/pin-linux-amd64": bin})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	data, sum, ok := b.Binary("linux/amd64")
	if !ok || !bytes.Equal(data, bin) || len(sum) != 32 {
		t.Fatalf("Binary = %q, %x, %v", data, sum, ok)
	}
	if _, _, ok := b.Binary("darwin/arm64"); ok {
		t.Error("Binary found a platform the bundle lacks")
	}
	// A binary that does not match the digest it is given is refused.
	wrong := m
	wrong.Modules.Native = []bundle.Native{{OS: "linux", Arch: "amd64", Path: "bin/pin-linux-amd64", SHA256: strings.Repeat("ab", 32)}}
	if _, err := bundle.Pack(wrong, map[string][]byte{"bin/pin-linux-amd64": bin}); err == nil {
		t.Error("Pack accepted a binary that does not match its sha256")
	}

	st := sqlitetest.Open(t)
	trust, _ := bundle.NewTrust([]string{pub}, false)
	signed, err := bundle.Sign(a, priv)
	if err != nil {
		t.Fatal(err)
	}
	req := bundle.Request{Archive: signed, Grants: []string{"http", "log"}, Config: json.RawMessage(`{"pin":"1234"}`)}
	_, err = (&bundle.Manager{Store: st, Trust: trust, Platform: "darwin/arm64"}).Install(context.Background(), req)
	if !errors.Is(err, bundle.ErrNoModule) || !strings.Contains(err.Error(), "no module for darwin/arm64 (it ships linux/amd64)") {
		t.Errorf("Install on another platform: %v", err)
	}
	if _, err := (&bundle.Manager{Store: st, Trust: trust, Platform: "linux/amd64"}).Install(context.Background(), req); err != nil {
		t.Errorf("Install on its platform: %v", err)
	}
}

// TestSetTenant enables and disables a bundle per tenant.
func TestSetTenant(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	priv, pub := key(t)
	trust, _ := bundle.NewTrust([]string{pub}, false)
	m := &bundle.Manager{Store: st, Trust: trust}
	if _, err := m.Install(ctx, bundle.Request{Archive: pack(t, manifest("1.0.0"), priv), Grants: []string{"http", "log"},
		Config: json.RawMessage(`{"pin":"1234"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetTenant(ctx, "pin", "acme", false); !errors.Is(err, bundle.ErrConflict) {
		t.Errorf("disabling a tenant of an every-tenant bundle: %v", err)
	}
	if _, err := m.Configure(ctx, "pin", nil, []string{"acme"}); err != nil {
		t.Fatal(err)
	}
	v, err := m.SetTenant(ctx, "pin", "globex", true)
	if err != nil || strings.Join(v.Record.Tenants, ",") != "acme,globex" {
		t.Fatalf("enable globex: %v %v", v.Record.Tenants, err)
	}
	v, err = m.SetTenant(ctx, "pin", "acme", false)
	if err != nil || strings.Join(v.Record.Tenants, ",") != "globex" {
		t.Fatalf("disable acme: %v %v", v.Record.Tenants, err)
	}
	if _, err := m.SetTenant(ctx, "pin", "globex", false); !errors.Is(err, bundle.ErrConflict) {
		t.Errorf("disabling the last tenant: %v", err)
	}
	if _, err := m.SetTenant(ctx, "nope", "globex", true); !errors.Is(err, bundle.ErrNotInstalled) {
		t.Errorf("a bundle that is not installed: %v", err)
	}
}

// TestTrialErrorRedacted: a trial load's refusal that quotes a secret
// reaches the caller with the secret masked.
func TestTrialErrorRedacted(t *testing.T) {
	st := sqlitetest.Open(t)
	priv, pub := key(t)
	trust, _ := bundle.NewTrust([]string{pub}, false)
	box, _ := bundle.NewSecretBox(bytes.Repeat([]byte{7}, secret.MasterKeySize))
	m := &bundle.Manager{Store: st, Trust: trust, Box: box, Check: func(_ context.Context, _ *bundle.Bundle, rec bundle.Record) error {
		return errors.New("configure refused: " + string(rec.Config))
	}}
	_, err := m.Install(context.Background(), bundle.Request{Archive: pack(t, secretManifest("1.0.0"), priv), Grants: []string{"http", "log"},
		Config: json.RawMessage(`{"pin":"5550123"}`)})
	if !errors.Is(err, bundle.ErrRefused) || strings.Contains(err.Error(), "5550123") || !strings.Contains(err.Error(), bundle.Mask) {
		t.Errorf("Install = %v, want a refusal with the secret masked", err)
	}
}
