package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/latchid/latch/kernel/bundle"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

func manifest(version string) bundle.Manifest {
	return bundle.Manifest{
		Name: "pin", Version: version, ABIVersion: "1",
		Extensions:   []bundle.Extension{{Kind: "authenticator", Name: "pin"}},
		Capabilities: []bundle.Capability{{Name: "log"}, {Name: "http", Hosts: []string{"sms.example.com"}}},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"pin":{"type":"string","minLength":4}},"required":["pin"],"additionalProperties":false}`),
		Modules:      bundle.Modules{WASM: "modules/pin.wasm"},
	}
}

func pack(t *testing.T, m bundle.Manifest, priv ed25519.PrivateKey) []byte {
	t.Helper()
	a, err := bundle.Pack(m, map[string][]byte{"modules/pin.wasm": []byte("\x00asm fake " + m.Version)})
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	if priv == nil {
		return a
	}
	if a, err = bundle.Sign(a, priv); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return a
}

func key(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pemKey, pub, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := bundle.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// rawTar writes entries as given, for archives the packer would refuse.
func rawTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := strings.Repeat("x", int(h.Size))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tamper rewrites one file of an archive without fixing its digest.
func tamper(t *testing.T, archive []byte, name string, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(tr); err != nil {
			t.Fatal(err)
		}
		b := body.Bytes()
		if h.Name == name {
			b = data
		}
		h.Size = int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

func TestSignVerify(t *testing.T) {
	priv, pub := key(t)
	other, otherPub := key(t)
	trust, err := bundle.NewTrust([]string{pub}, false)
	if err != nil {
		t.Fatal(err)
	}
	signed := pack(t, manifest("1.0.0"), priv)
	tests := []struct {
		name    string
		archive []byte
		trust   bundle.Trust
		want    error
	}{
		{"signed by a trusted key", signed, trust, nil},
		{"unsigned, refused", pack(t, manifest("1.0.0"), nil), trust, bundle.ErrUnsigned},
		{"unsigned, allowed for development", pack(t, manifest("1.0.0"), nil), bundle.Trust{AllowUnsigned: true}, nil},
		{"signed by an untrusted key", pack(t, manifest("1.0.0"), other), trust, bundle.ErrBadSignature},
		{"signed by an untrusted key, unsigned allowed", pack(t, manifest("1.0.0"), other), bundle.Trust{AllowUnsigned: true}, bundle.ErrBadSignature},
		{"module altered", tamper(t, signed, "modules/pin.wasm", []byte("evil")), trust, bundle.ErrInvalidArchive},
		{"sums altered to match an altered module", resum(t, signed), trust, bundle.ErrBadSignature},
	}
	_ = otherPub
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := tt.trust.Open(tt.archive)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open err = %v, want %v", err, tt.want)
			}
			if err == nil && b.Manifest.Version != "1.0.0" {
				t.Errorf("version = %q", b.Manifest.Version)
			}
		})
	}
}

// resum alters the module and rewrites SHA256SUMS to match, keeping the
// old signature: only the signature can catch it.
func resum(t *testing.T, signed []byte) []byte {
	t.Helper()
	b, err := bundle.Read(signed)
	if err != nil {
		t.Fatal(err)
	}
	evil := []byte("evil")
	a := tamper(t, signed, "modules/pin.wasm", evil)
	sums := strings.Replace(string(b.Sums), sha(b.Files["modules/pin.wasm"]), sha(evil), 1)
	return tamper(t, a, bundle.SumsFile, []byte(sums))
}

func TestReadRefuses(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"not gzip", []byte("PK\x03\x04"), "not gzip"},
		{"traversal", rawTar(t, tar.Header{Name: "../etc/passwd", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "inside the archive"},
		{"absolute", rawTar(t, tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "inside the archive"},
		{"symlink", rawTar(t, tar.Header{Name: "modules/pin.wasm", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777}), "not a regular file"},
		{"hard link", rawTar(t, tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "b", Mode: 0o777}), "not a regular file"},
		{"duplicate", rawTar(t, tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}, tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "twice"},
		{"no sums", rawTar(t, tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "no SHA256SUMS"},
		{"too large", rawTar(t, tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: bundle.MaxFileSize + 1, Mode: 0o644}), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.Read(tt.archive)
			if !errors.Is(err, bundle.ErrInvalidArchive) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read err = %v, want ErrInvalidArchive with %q", err, tt.want)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	good, err := manifest("1.0.0").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.ParseManifest(good)
	if err != nil {
		t.Fatalf("ParseManifest(Marshal) = %v", err)
	}
	if m.Name != "pin" || len(m.ConfigSchema) == 0 || m.Hosts()[0] != "sms.example.com" {
		t.Errorf("round trip = %+v", m)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"wrong abi", "name: pin\nversion: 1.0.0\nabi_version: \"9\"\nextensions: [{kind: authenticator, name: pin}]\nmodules: {wasm: m.wasm}\n", `this host speaks ABI version "1"`},
		{"bad version", "name: pin\nversion: v1\nabi_version: \"1\"\nextensions: [{kind: authenticator, name: pin}]\nmodules: {wasm: m.wasm}\n", "semantic version"},
		{"unknown key", "name: pin\nversion: 1.0.0\nabi_version: \"1\"\nextensions: [{kind: authenticator, name: pin}]\nmodules: {wasm: m.wasm}\nrun_as: root\n", "run_as"},
		{"unknown kind", "name: pin\nversion: 1.0.0\nabi_version: \"1\"\nextensions: [{kind: miner, name: pin}]\nmodules: {wasm: m.wasm}\n", "unknown kind"},
		{"unknown capability", "name: pin\nversion: 1.0.0\nabi_version: \"1\"\nextensions: [{kind: authenticator, name: pin}]\ncapabilities: [{name: root}]\nmodules: {wasm: m.wasm}\n", "unknown capability"},
		{"module outside", "name: pin\nversion: 1.0.0\nabi_version: \"1\"\nextensions: [{kind: authenticator, name: pin}]\nmodules: {wasm: ../m.wasm}\n", "inside the archive"},
		{"bad schema", "name: pin\nversion: 1.0.0\nabi_version: \"1\"\nextensions: [{kind: authenticator, name: pin}]\nconfig_schema: {$ref: 'http://x/'}\nmodules: {wasm: m.wasm}\n", "config_schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.ParseManifest([]byte(tt.yaml))
			if !errors.Is(err, bundle.ErrInvalidManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidManifest with %q", err, tt.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	priv, pub := key(t)
	trust, _ := bundle.NewTrust([]string{pub}, false)
	m := &bundle.Manager{Store: st, Trust: trust}
	grants := []string{"http", "log"}
	cfg := json.RawMessage(`{"pin":"1234"}`)
	states := func() string {
		vs, err := m.Versions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.Version+"="+v.State)
		}
		return strings.Join(out, " ")
	}

	// Refusals change nothing.
	refusals := []struct {
		name string
		req  bundle.Request
		want error
	}{
		{"missing grant", bundle.Request{Archive: pack(t, manifest("1.0.0"), priv), Grants: []string{"log"}, Config: cfg}, bundle.ErrNotGranted},
		{"schema-invalid config", bundle.Request{Archive: pack(t, manifest("1.0.0"), priv), Grants: grants, Config: json.RawMessage(`{"pin":12}`)}, bundle.ErrInvalidConfig},
		{"unsigned", bundle.Request{Archive: pack(t, manifest("1.0.0"), nil), Grants: grants, Config: cfg}, bundle.ErrUnsigned},
	}
	for _, r := range refusals {
		if _, err := m.Install(ctx, r.req); !errors.Is(err, r.want) {
			t.Errorf("%s: Install err = %v, want %v", r.name, err, r.want)
		}
		if s := states(); s != "" {
			t.Fatalf("%s: store = %q after a refusal", r.name, s)
		}
	}

	if _, err := m.Install(ctx, bundle.Request{Archive: pack(t, manifest("1.0.0"), priv), Grants: grants, Config: cfg}); err != nil {
		t.Fatalf("Install: %v", err)
	}
	if _, err := m.Install(ctx, bundle.Request{Archive: pack(t, manifest("1.0.1"), priv), Grants: grants, Config: cfg}); !errors.Is(err, bundle.ErrConflict) {
		t.Errorf("second Install err = %v, want ErrConflict", err)
	}
	// An upgrade asking for more needs a new grant.
	more := manifest("2.0.0")
	more.Capabilities = append(more.Capabilities, bundle.Capability{Name: "kv"})
	if _, err := m.Upgrade(ctx, bundle.Request{Archive: pack(t, more, priv)}); !errors.Is(err, bundle.ErrNotGranted) {
		t.Errorf("Upgrade asking for kv err = %v, want ErrNotGranted", err)
	}
	if s := states(); s != "1.0.0=enabled" {
		t.Fatalf("after refused upgrade: %q", s)
	}
	if _, err := m.Upgrade(ctx, bundle.Request{Archive: pack(t, more, priv), Grants: []string{"http", "log", "kv"}}); err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if s := states(); s != "1.0.0=previous 2.0.0=enabled" {
		t.Fatalf("after upgrade: %q", s)
	}
	if _, err := m.Rollback(ctx, "pin"); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if s := states(); s != "1.0.0=enabled 2.0.0=previous" {
		t.Fatalf("after rollback: %q", s)
	}
	if _, err := m.SetEnabled(ctx, "pin", false); err != nil {
		t.Fatal(err)
	}
	if s := states(); s != "1.0.0=disabled 2.0.0=previous" {
		t.Fatalf("after disable: %q", s)
	}
	if _, err := m.Configure(ctx, "pin", json.RawMessage(`{"pin":"1"}`), nil); !errors.Is(err, bundle.ErrInvalidConfig) {
		t.Errorf("Configure with a bad config err = %v", err)
	}
	if err := m.Remove(ctx, "pin"); err != nil {
		t.Fatal(err)
	}
	if s := states(); s != "" {
		t.Fatalf("after remove: %q", s)
	}
	if err := m.Remove(ctx, "pin"); !errors.Is(err, bundle.ErrNotInstalled) {
		t.Errorf("second Remove err = %v", err)
	}
	var _ store.Bundles = st
}
