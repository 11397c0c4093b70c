package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

type fixture struct {
	clock *fakeClock
	st    *memKeys
	box   *secret.Box
	m     *Manager
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	clock := newFakeClock()
	box, err := secret.NewBox(make([]byte, secret.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	st := newMemKeys(clock.Now)
	opts.Now = clock.Now
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &fixture{clock: clock, st: st, box: box, m: NewManager(st, box, opts)}
}

// verifyWithJWKS parses a compact JWS and verifies it with the key the
// JWKS publishes under its kid, as a relying party would.
func verifyWithJWKS(t *testing.T, compact string, set jose.JSONWebKeySet) ([]byte, error) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("parsing JWS: %v", err)
	}
	kid := jws.Signatures[0].Protected.KeyID
	found := set.Key(kid)
	if len(found) != 1 {
		return nil, errors.New("kid " + kid + " not published")
	}
	return jws.Verify(&found[0])
}

func sign(t *testing.T, s *Signer, payload string) string {
	t.Helper()
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestEnsureKeysIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	for i := range 3 {
		if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
			t.Fatalf("EnsureKeys #%d: %v", i+1, err)
		}
	}
	all := f.st.all("t1")
	if len(all) != 1 {
		t.Fatalf("stored %d keys after three EnsureKeys, want 1", len(all))
	}
	if all[0].State != store.KeyActive || all[0].Algorithm != ES256 {
		t.Errorf("key = %s/%s, want active/ES256", all[0].State, all[0].Algorithm)
	}
	if len(f.st.all("t2")) != 0 {
		t.Error("EnsureKeys of t1 created keys for t2")
	}
}

func TestEnsureKeysConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(f.st.all("t1")); n != 1 {
		t.Errorf("concurrent EnsureKeys stored %d keys, want 1", n)
	}
}

func TestEnsureKeysPromotesPreparedKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{DefaultAlgorithm: EdDSA})
	kid, err := f.m.PrepareNext(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Signer(ctx, "t1", ""); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("Signer with only a next key: error = %v, want ErrNoActiveKey", err)
	}
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	s, err := f.m.Signer(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != kid || s.Algorithm() != EdDSA {
		t.Errorf("active key = %s/%s, want the prepared %s/EdDSA", s.KeyID(), s.Algorithm(), kid)
	}
	if n := len(f.st.all("t1")); n != 1 {
		t.Errorf("stored %d keys, want 1", n)
	}
}

func TestRotateOverlapAndPurge(t *testing.T) {
	ctx := context.Background()
	const overlap = 2 * time.Hour
	f := newFixture(t, Options{Overlap: overlap})
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	oldSigner, err := f.m.Signer(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	oldToken := sign(t, oldSigner, `{"sub":"alice"}`)
	rotatedAt := f.clock.Now()

	newKID, err := f.m.Rotate(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldSigner.KeyID() {
		t.Fatal("Rotate returned the old kid")
	}

	// The store now holds the old key as retiring until rotatedAt+overlap.
	old, err := f.st.GetSigningKey(ctx, "t1", oldSigner.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if old.State != store.KeyRetiring || !old.NotAfter.Equal(rotatedAt.Add(overlap)) {
		t.Errorf("old key = %s until %v, want retiring until %v", old.State, old.NotAfter, rotatedAt.Add(overlap))
	}

	// Signing uses the new key at once (the rotation invalidated the cache).
	cur, err := f.m.Signer(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	if cur.KeyID() != newKID {
		t.Errorf("Signer after Rotate = %s, want %s", cur.KeyID(), newKID)
	}

	tests := []struct {
		name        string
		advance     time.Duration
		purge       bool
		wantKIDs    []string
		wantOldOK   bool
		wantDeleted int
	}{
		{"right after rotation", 0, false, []string{newKID, old.ID}, true, 0},
		{"just inside the overlap, purged", overlap - time.Minute, true, []string{newKID, old.ID}, true, 0},
		{"past the overlap, purged", 2 * time.Minute, true, []string{newKID}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			if tt.purge {
				n, err := f.m.Purge(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n != tt.wantDeleted {
					t.Errorf("Purge deleted %d, want %d", n, tt.wantDeleted)
				}
			}
			set, err := f.m.PublicJWKS(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if got := kids(set); strings.Join(got, ",") != strings.Join(tt.wantKIDs, ",") {
				t.Errorf("JWKS kids = %v, want %v", got, tt.wantKIDs)
			}
			payload, err := verifyWithJWKS(t, oldToken, set)
			if tt.wantOldOK {
				if err != nil || string(payload) != `{"sub":"alice"}` {
					t.Errorf("old token: payload %q, error %v; want it to verify", payload, err)
				}
			} else if err == nil {
				t.Error("old token still verifies after the overlap")
			}
		})
	}
	if _, err := f.st.GetSigningKey(ctx, "t1", old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old key still stored after Purge: %v", err)
	}
	// The new key still signs after the purge cleared the caches.
	s, err := f.m.Signer(ctx, "t1", "")
	if err != nil || s.KeyID() != newKID {
		t.Fatalf("Signer after Purge = %v, %v", s, err)
	}
}

func TestJWKSHidesRetiredKeyWithoutPurge(t *testing.T) {
	// A key past its overlap must not be published even when the store
	// still returns it (another node's clock, a purge not yet run).
	ctx := context.Background()
	f := newFixture(t, Options{Overlap: time.Hour})
	f.st.now = func() time.Time { return time.Time{} } // the store filters nothing
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	first := f.st.all("t1")[0].ID
	if _, err := f.m.Rotate(ctx, "t1", ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	set, err := f.m.PublicJWKS(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Key(first)) != 0 {
		t.Errorf("JWKS %v still has the key retired an overlap ago", kids(set))
	}
}

func TestAlgorithms(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		alg     string
		checkPK func(t *testing.T, k any)
	}{
		{ES256, func(t *testing.T, k any) {
			pk, ok := k.(*ecdsa.PublicKey)
			if !ok || pk.Curve != elliptic.P256() {
				t.Errorf("public key %T is not P-256", k)
			}
		}},
		{RS256, func(t *testing.T, k any) {
			pk, ok := k.(*rsa.PublicKey)
			if !ok || pk.N.BitLen() < 2048 {
				t.Errorf("public key %T is not RSA >= 2048 bits", k)
			}
		}},
		{EdDSA, func(t *testing.T, k any) {
			if _, ok := k.(ed25519.PublicKey); !ok {
				t.Errorf("public key %T is not Ed25519", k)
			}
		}},
	}
	f := newFixture(t, Options{})
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			if err := f.m.EnsureAlgorithm(ctx, "t1", tt.alg); err != nil {
				t.Fatal(err)
			}
			s, err := f.m.Signer(ctx, "t1", tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != tt.alg {
				t.Errorf("Algorithm() = %s", s.Algorithm())
			}
			compact := sign(t, s, `{"iss":"x"}`)
			jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tt.alg)})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			if h.KeyID != s.KeyID() || h.Algorithm != tt.alg {
				t.Errorf("header kid=%q alg=%q, want %q %q", h.KeyID, h.Algorithm, s.KeyID(), tt.alg)
			}
			set, err := f.m.PublicJWKS(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			pub := set.Key(s.KeyID())
			if len(pub) != 1 {
				t.Fatalf("kid %s not in JWKS", s.KeyID())
			}
			if pub[0].Algorithm != tt.alg || pub[0].Use != "sig" || !pub[0].IsPublic() {
				t.Errorf("JWK alg=%q use=%q public=%v", pub[0].Algorithm, pub[0].Use, pub[0].IsPublic())
			}
			tt.checkPK(t, pub[0].Key)
			if _, err := jws.Verify(&pub[0]); err != nil {
				t.Errorf("verifying with the published key: %v", err)
			}
			// A typ header through WithOptions, same key.
			js, err := s.WithOptions((&jose.SignerOptions{}).WithType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			signed, err := js.Sign([]byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			typed, err := signed.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			obj, err := jose.ParseSignedCompact(typed, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tt.alg)})
			if err != nil {
				t.Fatal(err)
			}
			if typ := obj.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
				t.Errorf("typ = %v, want at+jwt", typ)
			}
			if _, err := obj.Verify(&pub[0]); err != nil {
				t.Errorf("WithOptions signer: %v", err)
			}
		})
	}
	// The JWKS of a tenant with three algorithms has one key each and no
	// private material.
	set, err := f.m.PublicJWKS(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 3 || strings.Contains(string(raw), `"d":`) || strings.Contains(string(raw), `"p":`) {
		t.Errorf("JWKS = %s", raw)
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	bad := newFixture(t, Options{DefaultAlgorithm: "PS256"})
	tests := []struct {
		name string
		call func() error
		alg  string
	}{
		{"Rotate HS256", func() error { _, err := f.m.Rotate(ctx, "t1", "HS256"); return err }, "HS256"},
		{"Signer none", func() error { _, err := f.m.Signer(ctx, "t1", "none"); return err }, "none"},
		{"EnsureAlgorithm ES384", func() error { return f.m.EnsureAlgorithm(ctx, "t1", "ES384") }, "ES384"},
		{"PrepareNext lower-case es256", func() error { _, err := f.m.PrepareNext(ctx, "t1", "es256"); return err }, "es256"},
		{"default algorithm PS256", func() error { return bad.m.EnsureKeys(ctx, "t1") }, "PS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrUnsupportedAlgorithm) || !strings.Contains(err.Error(), `"`+tt.alg+`"`) {
				t.Fatalf("error = %v, want ErrUnsupportedAlgorithm naming %q", err, tt.alg)
			}
		})
	}
	if n := len(f.st.all("t1")) + len(bad.st.all("t1")); n != 0 {
		t.Errorf("%d keys stored by failed calls", n)
	}
}

func TestSignerNoActiveKey(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := f.m.Signer(context.Background(), "t1", RS256)
	if !errors.Is(err, ErrNoActiveKey) || !strings.Contains(err.Error(), `"t1"`) {
		t.Fatalf("error = %v, want ErrNoActiveKey naming the tenant", err)
	}
}

func TestSealedKeyBinding(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// move returns the record as planted into another row.
		move func(k store.SigningKey) store.SigningKey
	}{
		{"to another tenant", func(k store.SigningKey) store.SigningKey { k.TenantID = "t2"; return k }},
		{"to another kid", func(k store.SigningKey) store.SigningKey { k.ID = store.NewID(); return k }},
		{"to another algorithm", func(k store.SigningKey) store.SigningKey { k.Algorithm = RS256; return k }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
				t.Fatal(err)
			}
			orig := f.st.all("t1")[0]
			moved := tt.move(orig)
			f.st.put(moved)
			// A fresh manager, so nothing is cached.
			m := NewManager(f.st, f.box, Options{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)})
			_, err := m.Signer(ctx, moved.TenantID, moved.Algorithm)
			if !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("Signer over a moved key: error = %v, want secret.ErrDecrypt", err)
			}
		})
	}
}

func TestCorruptKeyType(t *testing.T) {
	// A key sealed correctly but of the wrong type for its record.
	ctx := context.Background()
	f := newFixture(t, Options{})
	priv, err := generate(EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	rec := sealedRecord(t, f, "t1", ES256, priv)
	if err := f.st.CreateSigningKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RotateSigningKeys(ctx, "t1", rec.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Signer(ctx, "t1", ES256); !errors.Is(err, ErrCorruptKey) {
		t.Fatalf("error = %v, want ErrCorruptKey", err)
	}
}

func TestSignerCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{ActiveCacheTTL: time.Minute})
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	first, err := f.m.Signer(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	lists := f.st.count("list")
	for range 100 {
		s, err := f.m.Signer(ctx, "t1", "")
		if err != nil {
			t.Fatal(err)
		}
		if s != first {
			t.Fatal("Signer returned a different instance for the same key: it was opened again")
		}
	}
	if got := f.st.count("list") - lists; got != 0 {
		t.Errorf("100 cached Signer calls made %d store calls, want 0", got)
	}

	// Another node rotates; this node sees it once the TTL has passed.
	other := NewManager(f.st, f.box, Options{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	newKID, err := other.Rotate(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.m.Signer(ctx, "t1", ""); s.KeyID() != first.KeyID() {
		t.Errorf("within the TTL: signer %s, want the cached %s", s.KeyID(), first.KeyID())
	}
	f.clock.Advance(time.Minute)
	if s, _ := f.m.Signer(ctx, "t1", ""); s.KeyID() != newKID {
		t.Errorf("after the TTL: signer %s, want %s", s.KeyID(), newKID)
	}

	// With the cache disabled every call asks the store but still does not
	// decrypt again.
	nc := NewManager(f.st, f.box, Options{Now: f.clock.Now, ActiveCacheTTL: -1, Logger: slog.New(slog.DiscardHandler)})
	a, _ := nc.Signer(ctx, "t1", "")
	lists = f.st.count("list")
	b, _ := nc.Signer(ctx, "t1", "")
	if f.st.count("list")-lists != 1 || a != b {
		t.Errorf("uncached Signer: %d list calls, same instance %v", f.st.count("list")-lists, a == b)
	}
}

func TestStoreErrorsWrapped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{ActiveCacheTTL: -1})
	boom := errors.New("disk on fire")
	f.st.failList = boom
	if _, err := f.m.Signer(ctx, "t1", ""); !errors.Is(err, boom) {
		t.Errorf("Signer error = %v, want it to wrap the store error", err)
	}
	if _, err := f.m.PublicJWKS(ctx, "t1"); !errors.Is(err, boom) {
		t.Errorf("PublicJWKS error = %v", err)
	}
	if err := f.m.EnsureKeys(ctx, "t1"); !errors.Is(err, boom) {
		t.Errorf("EnsureKeys error = %v", err)
	}
}

func TestConcurrentSignAndRotate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				s, err := f.m.Signer(ctx, "t1", "")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Sign([]byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := f.m.Rotate(ctx, "t1", ""); err != nil {
				t.Error(err)
			}
			if _, err := f.m.PublicJWKS(ctx, "t1"); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	active := 0
	for _, k := range f.st.all("t1") {
		if k.State == store.KeyActive {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active keys after concurrent rotation, want 1", active)
	}
}

func TestSealADUnambiguous(t *testing.T) {
	a, err := sealAD("ab", "c", ES256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sealAD("a", "bc", ES256)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		t.Error("different (tenant, kid) pairs give the same associated data")
	}
}

func sealedRecord(t *testing.T, f *fixture, tenantID, alg string, priv crypto.Signer) store.SigningKey {
	t.Helper()
	kid := store.NewID()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := sealAD(tenantID, kid, alg)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := f.box.Seal(der, ad)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return store.SigningKey{ID: kid, TenantID: tenantID, Algorithm: alg, State: store.KeyNext,
		PrivateSealed: sealed, PublicJWK: pub, CreatedAt: f.clock.Now()}
}

var benchPayload = []byte(`{"iss":"https://id.example.com","sub":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",` +
	`"aud":"web-app","exp":1767326645,"iat":1767323045,"auth_time":1767323040,"nonce":"n-0S6_WzA2Mj",` +
	`"acr":"urn:latch:acr:password","amr":["pwd"],"sid":"0190a1b2-0000-7000-8000-000000000001"}`)

func benchmarkSign(b *testing.B, alg string) {
	ctx := context.Background()
	f := newFixture(b, Options{})
	if err := f.m.EnsureAlgorithm(ctx, "t1", alg); err != nil {
		b.Fatal(err)
	}
	s, err := f.m.Signer(ctx, "t1", alg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		jws, err := s.Sign(benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.CompactSerialize(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, ES256) }
func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, RS256) }
func BenchmarkSignEdDSA(b *testing.B) { benchmarkSign(b, EdDSA) }

// BenchmarkManagerSigner measures the cached lookup Signer does per token.
func BenchmarkManagerSigner(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b, Options{})
	if err := f.m.EnsureKeys(ctx, "t1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.Signer(ctx, "t1", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestForget checks that a node told of another node's rotation (Forget,
// ForgetAll) signs with the new key at once, well within the TTL, and
// that forgetting one tenant leaves the others cached.
func TestForget(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{ActiveCacheTTL: time.Hour})
	for _, tenant := range []string{"t1", "t2"} {
		if err := f.m.EnsureKeys(ctx, tenant); err != nil {
			t.Fatal(err)
		}
	}
	first1, err := f.m.Signer(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	first2, err := f.m.Signer(ctx, "t2", "")
	if err != nil {
		t.Fatal(err)
	}
	other := NewManager(f.st, f.box, Options{Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	kid1, err := other.Rotate(ctx, "t1", "")
	if err != nil {
		t.Fatal(err)
	}
	kid2, err := other.Rotate(ctx, "t2", "")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.m.Signer(ctx, "t1", ""); s.KeyID() != first1.KeyID() {
		t.Fatalf("before Forget: signer %s, want the cached %s", s.KeyID(), first1.KeyID())
	}
	f.m.Forget("t1")
	if s, _ := f.m.Signer(ctx, "t1", ""); s.KeyID() != kid1 {
		t.Errorf("after Forget(t1): signer %s, want the new %s", s.KeyID(), kid1)
	}
	lists := f.st.count("list")
	if s, _ := f.m.Signer(ctx, "t2", ""); s != first2 {
		t.Errorf("Forget(t1) dropped t2's signer: got %s", s.KeyID())
	}
	if f.st.count("list") != lists {
		t.Error("Forget(t1) made t2's Signer ask the store")
	}
	f.m.ForgetAll()
	if s, _ := f.m.Signer(ctx, "t2", ""); s.KeyID() != kid2 {
		t.Errorf("after ForgetAll: signer %s, want the new %s", s.KeyID(), kid2)
	}
}
