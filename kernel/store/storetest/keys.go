package storetest

import (
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	t0 := time.Now().Add(-time.Hour)
	k1 := store.SigningKey{ID: "es-1", TenantID: tid, Algorithm: "ES256", State: store.KeyActive,
		PrivateSealed: []byte{1, 2, 3, 0}, PublicJWK: []byte(`{"kty":"EC","kid":"es-1"}`), CreatedAt: t0}
	rs := store.SigningKey{ID: "rs-1", TenantID: tid, Algorithm: "RS256", State: store.KeyActive,
		PrivateSealed: []byte{4}, PublicJWK: []byte(`{"kty":"RSA"}`), CreatedAt: t0.Add(time.Second)}
	k2 := store.SigningKey{ID: "es-2", TenantID: tid, Algorithm: "ES256", State: store.KeyNext,
		PrivateSealed: []byte{5}, PublicJWK: []byte(`{"kty":"EC","kid":"es-2"}`), CreatedAt: t0.Add(2 * time.Second)}
	for _, k := range []store.SigningKey{k1, rs, k2} {
		ok(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.ID)
	}
	got, err := s.GetSigningKey(ctx, tid, "es-1")
	ok(t, err, "GetSigningKey")
	same(t, "GetSigningKey", got, k1)
	_, err = s.GetSigningKey(ctx, tid, "nope")
	is(t, err, store.ErrNotFound, "GetSigningKey of a missing id")

	is(t, s.CreateSigningKey(ctx, k1), store.ErrConflict, "CreateSigningKey with a taken id")
	is(t, s.CreateSigningKey(ctx, store.SigningKey{ID: "es-3", TenantID: tid, Algorithm: "ES256", State: store.KeyActive}),
		store.ErrConflict, "CreateSigningKey of a second active key for an algorithm")
	is(t, s.CreateSigningKey(ctx, store.SigningKey{ID: "x", TenantID: tid, Algorithm: "ES256", State: "spare"}),
		store.ErrInvalid, "CreateSigningKey with an unknown state")
	is(t, s.CreateSigningKey(ctx, store.SigningKey{TenantID: tid, Algorithm: "ES256", State: store.KeyNext}),
		store.ErrInvalid, "CreateSigningKey without an id")
	k, err := s.GetSigningKey(ctx, tid, "es-1")
	ok(t, err, "GetSigningKey")
	same(t, "GetSigningKey after refused creates", k, k1)

	list := func(what string, want ...string) {
		t.Helper()
		ks, err := s.ListSigningKeys(ctx, tid)
		ok(t, err, what)
		got := ids(ks, func(k store.SigningKey) string { return k.ID })
		if len(got) != len(want) {
			t.Errorf("%s: got %q, want %q", what, got, want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: got %q, want %q (newest first)", what, got, want)
				return
			}
		}
	}
	list("ListSigningKeys", "es-2", "rs-1", "es-1")

	retire := time.Now().Add(time.Hour)
	ok(t, s.RotateSigningKeys(ctx, tid, "es-2", retire), "RotateSigningKeys")
	check := func(id, state string, notAfter time.Time) {
		t.Helper()
		k, err := s.GetSigningKey(ctx, tid, id)
		ok(t, err, "GetSigningKey "+id)
		if k.State != state || !equal(k.NotAfter, notAfter) {
			t.Errorf("key %s: state %q not after %v, want %q and %v", id, k.State, k.NotAfter, state, notAfter)
		}
	}
	check("es-2", store.KeyActive, time.Time{})
	check("es-1", store.KeyRetiring, retire)
	check("rs-1", store.KeyActive, time.Time{})
	list("ListSigningKeys after RotateSigningKeys", "es-2", "rs-1", "es-1")

	ok(t, s.RotateSigningKeys(ctx, tid, "es-2", time.Now().Add(5*time.Hour)), "RotateSigningKeys to the active key")
	check("es-2", store.KeyActive, time.Time{})
	check("es-1", store.KeyRetiring, retire)
	is(t, s.RotateSigningKeys(ctx, tid, "nope", retire), store.ErrNotFound, "RotateSigningKeys to a missing key")
	check("es-2", store.KeyActive, time.Time{})

	// The next rotation retires es-2 into the past: it is no longer
	// published, and the purge removes it but not es-1.
	ok(t, s.CreateSigningKey(ctx, store.SigningKey{ID: "es-3", TenantID: tid, Algorithm: "ES256", State: store.KeyNext,
		CreatedAt: t0.Add(3 * time.Second)}), "CreateSigningKey es-3")
	past := ago(time.Minute)
	ok(t, s.RotateSigningKeys(ctx, tid, "es-3", past), "RotateSigningKeys")
	check("es-3", store.KeyActive, time.Time{})
	check("es-2", store.KeyRetiring, past)
	check("rs-1", store.KeyActive, time.Time{})
	list("ListSigningKeys after retiring a key into the past", "es-3", "rs-1", "es-1")

	n, err := s.DeleteExpiredSigningKeys(ctx, time.Now())
	ok(t, err, "DeleteExpiredSigningKeys")
	if n != 1 {
		t.Errorf("DeleteExpiredSigningKeys: removed %d, want 1", n)
	}
	_, err = s.GetSigningKey(ctx, tid, "es-2")
	is(t, err, store.ErrNotFound, "GetSigningKey of a purged key")
	check("es-1", store.KeyRetiring, retire)
	n, err = s.DeleteExpiredSigningKeys(ctx, time.Now())
	ok(t, err, "DeleteExpiredSigningKeys")
	if n != 0 {
		t.Errorf("DeleteExpiredSigningKeys twice: removed %d, want 0", n)
	}
	n, err = s.DeleteExpiredSigningKeys(ctx, retire.Add(time.Minute))
	ok(t, err, "DeleteExpiredSigningKeys")
	if n != 1 {
		t.Errorf("DeleteExpiredSigningKeys after es-1 retires: removed %d, want 1", n)
	}
	list("ListSigningKeys after the purges", "es-3", "rs-1")
}
