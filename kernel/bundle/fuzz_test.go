package bundle_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/latchid/latch/kernel/bundle"
)

func sha(b []byte) string {
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// FuzzRead feeds arbitrary archives to Read: it must not panic, and must
// refuse with one of its sentinels or return a bundle whose files all
// match SHA256SUMS.
func FuzzRead(f *testing.F) {
	good, err := bundle.Pack(manifest("1.0.0"), map[string][]byte{"modules/pin.wasm": []byte("\x00asm")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, archive []byte) {
		b, err := bundle.Read(archive)
		if err != nil {
			if !errors.Is(err, bundle.ErrInvalidArchive) && !errors.Is(err, bundle.ErrInvalidManifest) && !errors.Is(err, bundle.ErrBadSignature) {
				t.Fatalf("Read error %v has no sentinel", err)
			}
			return
		}
		if b.Module() == nil {
			t.Fatal("accepted a bundle without its module")
		}
	})
}

// FuzzParseManifest: no panic; what it accepts checks and round-trips.
func FuzzParseManifest(f *testing.F) {
	good, err := manifest("1.0.0").Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("name: x\n"))
	f.Add([]byte("config_schema: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bundle.ParseManifest(data)
		if err != nil {
			if !errors.Is(err, bundle.ErrInvalidManifest) {
				t.Fatalf("error %v is not ErrInvalidManifest", err)
			}
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("accepted a manifest that fails Check: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bundle.ParseManifest(out); err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
	})
}
