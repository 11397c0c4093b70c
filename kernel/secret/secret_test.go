package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, MasterKeySize) }

func mustBox(t testing.TB, key []byte) *Box {
	t.Helper()
	b, err := NewBox(key)
	if err != nil {
		t.Fatalf("NewBox: %v", err)
	}
	return b
}

func TestNewBoxKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewBox(make([]byte, n)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("NewBox(%d bytes) error = %v, want ErrKeyLength", n, err)
		}
	}
}

func TestBoxRoundTrip(t *testing.T) {
	box := mustBox(t, testKey(1))
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty plaintext, no ad", nil, nil},
		{"short", []byte("hello"), []byte("tenant-1/key-1")},
		{"binary", []byte{0, 1, 2, 255, 254}, nil},
		{"long", bytes.Repeat([]byte("x"), 1<<16), []byte("ad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := box.Seal(tt.plaintext, tt.ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if got, want := len(sealed), overhead+len(tt.plaintext); got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			if sealed[0] != FormatV1 {
				t.Errorf("version byte = %#x, want %#x", sealed[0], FormatV1)
			}
			if len(tt.plaintext) > 8 && bytes.Contains(sealed, tt.plaintext[:8]) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := box.Open(sealed, tt.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestBoxOpenFails(t *testing.T) {
	box := mustBox(t, testKey(1))
	other := mustBox(t, testKey(2))
	ad := []byte("tenant-a/kid-1")
	sealed, err := box.Seal([]byte("signing key bytes"), ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		box    *Box
		sealed []byte
		ad     []byte
		detail string
	}{
		{"wrong key", other, sealed, ad, "unknown master key"},
		{"wrong associated data", box, sealed, []byte("tenant-b/kid-1"), ""},
		{"missing associated data", box, sealed, nil, ""},
		{"version byte changed", box, flip(0), ad, "unknown format version"},
		{"key id changed", box, flip(1), ad, "unknown master key"},
		{"nonce changed", box, flip(headerSize), ad, ""},
		{"ciphertext changed", box, flip(headerSize + nonceSize), ad, ""},
		{"tag changed", box, flip(len(sealed) - 1), ad, ""},
		{"truncated", box, sealed[:len(sealed)-1], ad, ""},
		{"shorter than overhead", box, sealed[:overhead-1], ad, "too short"},
		{"empty", box, nil, ad, "too short"},
		{"trailing byte", box, append(bytes.Clone(sealed), 0), ad, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, tt.ad)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open error = %v, want ErrDecrypt", err)
			}
			if got != nil {
				t.Errorf("Open returned plaintext %q with an error", got)
			}
			if tt.detail != "" && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not mention %q", err, tt.detail)
			}
		})
	}
}

func TestBoxPreviousKeys(t *testing.T) {
	old := mustBox(t, testKey(1))
	sealed, err := old.Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewBoxWithPrevious(testKey(2), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, nil); err != nil || string(got) != "v" {
		t.Fatalf("rotated.Open(old value) = %q, %v; want \"v\", nil", got, err)
	}
	resealed, err := rotated.Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Open(resealed, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("old box opened a value sealed under the new key: %v", err)
	}
	if rotated.KeyID() == old.KeyID() {
		t.Error("rotated box seals under the old key id")
	}
	if _, err := NewBoxWithPrevious(testKey(2), make([]byte, 5)); !errors.Is(err, ErrKeyLength) {
		t.Errorf("short previous key error = %v, want ErrKeyLength", err)
	}
}

func TestBoxNonceUnique(t *testing.T) {
	box := mustBox(t, testKey(1))
	const n = 2000
	seen := make(map[string]bool, n)
	for range n {
		sealed, err := box.Seal([]byte("same plaintext"), []byte("same ad"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(sealed[headerSize : headerSize+nonceSize])
		if seen[nonce] {
			t.Fatalf("nonce %x repeated", nonce)
		}
		seen[nonce] = true
	}
}

func TestDecodeMasterKey(t *testing.T) {
	key := testKey(0xfb) // 0xfb bytes make '+' / '-' differ between alphabets
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"std padded", base64.StdEncoding.EncodeToString(key), ""},
		{"std raw", base64.RawStdEncoding.EncodeToString(key), ""},
		{"url padded", base64.URLEncoding.EncodeToString(key), ""},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), ""},
		{"surrounding whitespace", " " + base64.StdEncoding.EncodeToString(key) + "\n", ""},
		{"not base64", "not*base64!", "not valid base64"},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), "must be 32 bytes, got 16"},
		{"empty", "", "must be 32 bytes, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMasterKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.in != "" && strings.Contains(err.Error(), tt.in) {
					t.Errorf("error %q repeats the input", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("DecodeMasterKey = %x, %v; want %x", got, err, key)
			}
		})
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	cfgKey := testKey(7)
	writeFile := func(t *testing.T, dir, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, MasterKeyFile)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, dir string)
		fromConfig string
		wantKey    []byte // nil: any new key
		wantErr    string
		wantWarn   bool
	}{
		{
			name:       "from config wins over file",
			setup:      func(t *testing.T, dir string) { writeFile(t, dir, EncodeMasterKey(testKey(9)), 0o600) },
			fromConfig: base64.RawURLEncoding.EncodeToString(cfgKey),
			wantKey:    cfgKey,
		},
		{
			name:       "bad config key",
			fromConfig: "c2hvcnQ=",
			wantErr:    "LATCH_MASTER_KEY",
		},
		{
			name:    "existing file",
			setup:   func(t *testing.T, dir string) { writeFile(t, dir, EncodeMasterKey(testKey(9))+"\n", 0o600) },
			wantKey: testKey(9),
		},
		{
			name:     "generated when missing",
			wantWarn: true,
		},
		{
			name:    "file readable by others",
			setup:   func(t *testing.T, dir string) { writeFile(t, dir, EncodeMasterKey(testKey(9)), 0o644) },
			wantErr: "permissions 0644",
		},
		{
			name:    "file with wrong length",
			setup:   func(t *testing.T, dir string) { writeFile(t, dir, EncodeMasterKey(testKey(9)[:20]), 0o600) },
			wantErr: "must be 32 bytes, got 20",
		},
		{
			name:    "file not base64",
			setup:   func(t *testing.T, dir string) { writeFile(t, dir, "hello world", 0o600) },
			wantErr: "not valid base64",
		},
		{
			name:    "file too large",
			setup:   func(t *testing.T, dir string) { writeFile(t, dir, strings.Repeat("A", 5000), 0o600) },
			wantErr: "too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.Contains(tt.wantErr, "permissions") {
				t.Skip("permissions are not checked on Windows")
			}
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			key, err := LoadOrCreateMasterKey(dir, tt.fromConfig, log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.fromConfig == "" && !strings.Contains(err.Error(), filepath.Join(dir, MasterKeyFile)) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreateMasterKey: %v", err)
			}
			if len(key) != MasterKeySize {
				t.Fatalf("len(key) = %d", len(key))
			}
			if tt.wantKey != nil && !bytes.Equal(key, tt.wantKey) {
				t.Errorf("key = %x, want %x", key, tt.wantKey)
			}
			gotWarn := strings.Contains(logs.String(), "level=WARN")
			if gotWarn != tt.wantWarn {
				t.Errorf("warned = %v, want %v; log: %s", gotWarn, tt.wantWarn, logs.String())
			}
			if strings.Contains(logs.String(), EncodeMasterKey(key)) {
				t.Error("the log contains the master key")
			}
			if tt.wantWarn {
				for _, want := range []string{"development", "LATCH_MASTER_KEY", "back", MasterKeyFile} {
					if !strings.Contains(logs.String(), want) {
						t.Errorf("warning %q does not mention %q", logs.String(), want)
					}
				}
				p := filepath.Join(dir, MasterKeyFile)
				info, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
					t.Errorf("generated file mode = %04o, want 0600", info.Mode().Perm())
				}
				again, err := LoadOrCreateMasterKey(dir, "", log)
				if err != nil || !bytes.Equal(again, key) {
					t.Errorf("second load = %x, %v; want the generated key %x", again, err, key)
				}
			}
		})
	}
}

func TestLoadOrCreateMasterKeyCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := LoadOrCreateMasterKey(dir, "", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); err != nil {
		t.Fatal(err)
	}
}

func TestClientSecret(t *testing.T) {
	s, err := GenerateClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 43 || strings.ContainsAny(s, "+/=") {
		t.Errorf("secret %q is not 43 characters of unpadded base64url", s)
	}
	s2, _ := GenerateClientSecret()
	if s == s2 {
		t.Error("two generated secrets are equal")
	}
	hash := HashClientSecret(s)
	if !strings.HasPrefix(hash, "sha256:") || strings.Contains(hash, s) {
		t.Errorf("hash %q has the wrong form", hash)
	}
	tests := []struct {
		name   string
		secret string
		hash   string
		want   bool
	}{
		{"same secret", s, hash, true},
		{"other secret", s2, hash, false},
		{"secret one character short", s[:len(s)-1], hash, false},
		{"empty secret", "", hash, false},
		{"empty hash", s, "", false},
		{"hash without scheme", s, strings.TrimPrefix(hash, "sha256:"), false},
		{"unknown scheme", s, "md5:" + strings.TrimPrefix(hash, "sha256:"), false},
		{"secret given as hash", s, s, false},
		{"truncated hash", s, hash[:len(hash)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyClientSecret(tt.secret, tt.hash); got != tt.want {
				t.Errorf("VerifyClientSecret = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRandomToken(t *testing.T) {
	tests := []struct {
		n       int
		wantLen int
		wantErr bool
	}{
		{n: 1, wantLen: 2},
		{n: 16, wantLen: 22},
		{n: 32, wantLen: 43},
		{n: 0, wantErr: true},
		{n: -1, wantErr: true},
	}
	for _, tt := range tests {
		got, err := RandomToken(tt.n)
		if (err != nil) != tt.wantErr {
			t.Errorf("RandomToken(%d) error = %v, wantErr %v", tt.n, err, tt.wantErr)
			continue
		}
		if len(got) != tt.wantLen {
			t.Errorf("RandomToken(%d) = %q, want %d characters", tt.n, got, tt.wantLen)
		}
		if _, err := base64.RawURLEncoding.DecodeString(got); err != nil {
			t.Errorf("RandomToken(%d) = %q is not base64url: %v", tt.n, got, err)
		}
	}
}

func FuzzBoxOpen(f *testing.F) {
	box := mustBox(f, testKey(1))
	sealed, _ := box.Seal([]byte("seed"), []byte("ad"))
	f.Add(sealed, []byte("ad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{FormatV1, 0, 0, 0, 0}, []byte(nil))
	f.Add(bytes.Repeat([]byte{1}, overhead), []byte("x"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := box.Open(sealed, ad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open error %v does not wrap ErrDecrypt", err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		// Only a genuine sealed value can open: re-sealing must round-trip.
		again, err := box.Seal(pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := box.Open(again, ad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip after fuzz open failed: %v", err)
		}
	})
}

func BenchmarkBoxSealOpen(b *testing.B) {
	box := mustBox(b, testKey(1))
	plaintext := bytes.Repeat([]byte("k"), 128) // about a PKCS#8 P-256 key
	ad := []byte("tenant/kid")
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := box.Seal(plaintext, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := box.Open(sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyClientSecret(b *testing.B) {
	s, err := GenerateClientSecret()
	if err != nil {
		b.Fatal(err)
	}
	hash := HashClientSecret(s)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyClientSecret(s, hash) {
			b.Fatal("no match")
		}
	}
}

func TestDeriveKey(t *testing.T) {
	a, err := DeriveKey(testKey(1), "oauth-hmac")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != MasterKeySize {
		t.Fatalf("len = %d", len(a))
	}
	again, _ := DeriveKey(testKey(1), "oauth-hmac")
	if !bytes.Equal(a, again) {
		t.Fatal("same inputs gave different keys")
	}
	other, _ := DeriveKey(testKey(1), "csrf")
	if bytes.Equal(a, other) {
		t.Fatal("different purposes gave the same key")
	}
	otherMaster, _ := DeriveKey(testKey(2), "oauth-hmac")
	if bytes.Equal(a, otherMaster) || bytes.Equal(a, testKey(1)) {
		t.Fatal("derived key does not depend on the master key")
	}
	if _, err := DeriveKey(testKey(1)[:5], "x"); !errors.Is(err, ErrKeyLength) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := DeriveKey(testKey(1), ""); err == nil {
		t.Fatal("empty purpose accepted")
	}
}
