package password

import (
	"errors"
	"strings"
	"testing"
)

// fastParams keep the tests quick; they are valid, just weak.
var fastParams = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func TestHashVerify(t *testing.T) {
	h := NewHasher(fastParams)
	encoded, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("encoded = %q, want a PHC argon2id string with h's parameters", encoded)
	}
	again, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Error("two hashes of the same password are equal: the salt is not random")
	}

	stronger := NewHasher(Params{Memory: 128, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	longerKey := NewHasher(Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 64})
	tests := []struct {
		name        string
		hasher      *Hasher
		password    string
		wantOK      bool
		wantRehash  bool
		wantErrIs   error
		wantErrText string
	}{
		{name: "right password", hasher: h, password: "correct horse battery staple", wantOK: true},
		{name: "wrong password", hasher: h, password: "correct horse battery stapler"},
		{name: "empty password", hasher: h, password: ""},
		{name: "case differs", hasher: h, password: "Correct horse battery staple"},
		{name: "params raised: needs rehash", hasher: stronger, password: "correct horse battery staple", wantOK: true, wantRehash: true},
		{name: "key length changed: needs rehash", hasher: longerKey, password: "correct horse battery staple", wantOK: true, wantRehash: true},
		{name: "wrong password never asks for rehash", hasher: stronger, password: "nope"},
		{name: "too long", hasher: h, password: strings.Repeat("a", MaxLength+1), wantErrIs: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := tt.hasher.Verify(tt.password, encoded)
			if tt.wantErrIs != nil {
				if !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("error = %v, want %v", err, tt.wantErrIs)
				}
			} else if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tt.wantOK || rehash != tt.wantRehash {
				t.Errorf("Verify = (ok %v, rehash %v), want (%v, %v)", ok, rehash, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestMaxLength(t *testing.T) {
	h := NewHasher(fastParams)
	tests := []struct {
		name    string
		n       int
		wantErr bool
	}{
		{"at the limit", MaxLength, false},
		{"one over", MaxLength + 1, true},
		{"a megabyte", 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw := strings.Repeat("p", tt.n)
			encoded, err := h.Hash(pw)
			if tt.wantErr {
				if !errors.Is(err, ErrTooLong) {
					t.Fatalf("Hash error = %v, want ErrTooLong", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, err := h.Verify(pw, encoded); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(fastParams)
	valid, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, "$") // "", argon2id, v=19, m=..., salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i variant", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"other version", join("", "argon2id", "v=16", parts[3], parts[4], parts[5])},
		{"missing field", join("", "argon2id", parts[2], parts[3], parts[4])},
		{"extra field", valid + "$x"},
		{"params not numbers", join("", "argon2id", parts[2], "m=a,t=b,p=c", parts[4], parts[5])},
		{"parallelism zero", join("", "argon2id", parts[2], "m=64,t=1,p=0", parts[4], parts[5])},
		{"parallelism overflows uint8", join("", "argon2id", parts[2], "m=64,t=1,p=256", parts[4], parts[5])},
		{"iterations zero", join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5])},
		{"memory too large", join("", "argon2id", parts[2], "m=4000000000,t=1,p=1", parts[4], parts[5])},
		{"iterations too large", join("", "argon2id", parts[2], "m=64,t=100000,p=1", parts[4], parts[5])},
		{"salt not base64", join("", "argon2id", parts[2], parts[3], "!!!", parts[5])},
		{"salt too short", join("", "argon2id", parts[2], parts[3], "YWJj", parts[5])},
		{"key not base64", join("", "argon2id", parts[2], parts[3], parts[4], "***")},
		{"key empty", join("", "argon2id", parts[2], parts[3], parts[4], "")},
		{"huge string", valid + strings.Repeat("A", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify("pw", tt.encoded)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error = %v, want ErrMalformedHash", err)
			}
			if ok || rehash {
				t.Errorf("Verify = (%v, %v) with an error", ok, rehash)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		wantErr string
	}{
		{"defaults", DefaultParams, ""},
		{"fast test params", fastParams, ""},
		{"zero", Params{}, "parallelism must be at least 1"},
		{"memory below 8 KiB per lane", Params{Memory: 31, Iterations: 1, Parallelism: 4, SaltLength: 16, KeyLength: 32}, "at least 8 KiB per lane (32 KiB)"},
		{"memory above limit", Params{Memory: MaxMemory + 1, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "memory must be at most"},
		{"no iterations", Params{Memory: 64, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "iterations must be between 1 and 64, got 0"},
		{"short salt", Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 4, KeyLength: 32}, "salt length"},
		{"short key", Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 8}, "key length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidParams) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidParams mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestHashRefusesInvalidParams(t *testing.T) {
	// argon2 itself panics on zero parallelism; Hash must return an error.
	if _, err := NewHasher(Params{}).Hash("pw"); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("Hash with zero params error = %v, want ErrInvalidParams", err)
	}
}

func TestPackageHashVerify(t *testing.T) {
	encoded, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %q, want DefaultParams in the PHC string", encoded)
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{{"s3cret", true}, {"s3cret ", false}} {
		ok, err := Verify(tt.pw, encoded)
		if err != nil || ok != tt.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}
}

func TestSimulateVerifyDoesNotPanic(t *testing.T) {
	NewHasher(fastParams).SimulateVerify("pw")
	NewHasher(Params{}).SimulateVerify("pw") // falls back to DefaultParams
	NewHasher(fastParams).SimulateVerify(strings.Repeat("a", MaxLength+1))
}

func FuzzVerify(f *testing.F) {
	h := NewHasher(fastParams)
	valid, _ := h.Hash("pw")
	f.Add("pw", valid)
	f.Add("", "$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("x", "$argon2id$v=19$m=-1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, pw, encoded string) {
		p, _, _, err := decode(encoded)
		if err == nil && uint64(p.Memory)*uint64(p.Iterations) > 4096 {
			// In range but slow to compute: parsing was the point, and the
			// range itself is tested in TestVerifyMalformed.
			return
		}
		ok, rehash, err := h.Verify(pw, encoded)
		if err != nil && (ok || rehash) {
			t.Fatal("ok or rehash set along with an error")
		}
	})
}

func BenchmarkPasswordHash(b *testing.B) {
	h := NewHasher(DefaultParams)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
