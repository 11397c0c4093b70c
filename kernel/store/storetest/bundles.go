package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testBundles(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Now().Add(-time.Hour)
	alpha1 := store.Bundle{Name: "alpha", Version: "1.0.0", ABIVersion: "1", Digest: "sha256:aa",
		Manifest: []byte(`{"name":"alpha"}`), Archive: []byte("PK\x03\x04alpha-1"), State: "enabled", InstalledAt: t0}
	alpha2 := store.Bundle{Name: "alpha", Version: "1.1.0", ABIVersion: "1", Digest: "sha256:ab",
		Manifest: []byte(`{"name":"alpha","v":2}`), Archive: []byte("PK\x03\x04alpha-2"), State: "disabled",
		InstalledAt: t0.Add(time.Minute)}
	alpha2.Install = &store.BundleInstall{Grants: []string{"http", "kv"}, Tenants: []string{"acme", "globex"},
		Config: []byte(`{"region":"eu"}`), Secrets: []byte{0x01, 0xfe, 0x00, 0x7f}, Signer: "0123456789abcdef",
		PreviousVersion: "1.0.0"}
	beta := store.Bundle{Name: "beta", Version: "0.1.0", ABIVersion: "1", Digest: "sha256:bb",
		Manifest: []byte(`{}`), Archive: []byte{0, 1, 2}, State: "enabled", InstalledAt: t0.Add(-time.Minute),
		Install: &store.BundleInstall{Grants: []string{}}}
	// Installed out of order: the newer alpha first.
	for _, b := range []store.Bundle{alpha2, beta, alpha1} {
		ok(t, s.PutBundle(ctx, b), "PutBundle "+b.Name+" "+b.Version)
	}
	got, err := s.GetBundle(ctx, "alpha", "1.0.0")
	ok(t, err, "GetBundle")
	same(t, "GetBundle", got, alpha1)
	_, err = s.GetBundle(ctx, "alpha", "9.9.9")
	is(t, err, store.ErrNotFound, "GetBundle of a missing version")

	list := func(what string, want ...store.Bundle) {
		t.Helper()
		bs, err := s.ListBundles(ctx)
		ok(t, err, what)
		if len(bs) != len(want) {
			t.Fatalf("%s: got %d bundles, want %d", what, len(bs), len(want))
		}
		for i, b := range bs {
			if len(b.Archive) != 0 {
				t.Errorf("%s: bundle %s %s came with its archive", what, b.Name, b.Version)
			}
			w := want[i]
			w.Archive = nil
			same(t, fmt.Sprintf("%s[%d]", what, i), b, w)
		}
	}
	list("ListBundles", alpha1, alpha2, beta)

	ok(t, s.SetBundleState(ctx, "alpha", "1.0.0", "previous"), "SetBundleState previous")
	ok(t, s.SetBundleState(ctx, "alpha", "1.1.0", "enabled"), "SetBundleState enabled")
	alpha1.State, alpha2.State = "previous", "enabled"
	got, err = s.GetBundle(ctx, "alpha", "1.1.0")
	ok(t, err, "GetBundle")
	same(t, "GetBundle after SetBundleState", got, alpha2)
	list("ListBundles after SetBundleState", alpha1, alpha2, beta)
	is(t, s.SetBundleState(ctx, "alpha", "1.1.0", "running"), store.ErrInvalid, "SetBundleState to an unknown state")
	is(t, s.SetBundleState(ctx, "alpha", "9.9.9", "disabled"), store.ErrNotFound, "SetBundleState of a missing version")
	got, err = s.GetBundle(ctx, "alpha", "1.1.0")
	ok(t, err, "GetBundle")
	same(t, "GetBundle after refused SetBundleState", got, alpha2)

	is(t, s.PutBundle(ctx, store.Bundle{Name: "gamma", Version: "1", State: "broken"}), store.ErrInvalid,
		"PutBundle with an unknown state")
	is(t, s.PutBundle(ctx, store.Bundle{Version: "1", State: "enabled"}), store.ErrInvalid, "PutBundle without a name")
	is(t, s.PutBundle(ctx, store.Bundle{Name: "gamma", State: "enabled"}), store.ErrInvalid, "PutBundle without a version")

	// PutBundle replaces a stored version, its install columns included.
	beta.Digest, beta.Archive, beta.State = "sha256:bc", []byte("new"), "disabled"
	beta.Install = &store.BundleInstall{Grants: []string{"kv"}, Tenants: []string{"acme"}, Config: []byte(`{}`), Signer: "k"}
	ok(t, s.PutBundle(ctx, beta), "PutBundle again")
	got, err = s.GetBundle(ctx, "beta", "0.1.0")
	ok(t, err, "GetBundle")
	same(t, "GetBundle after replacing", got, beta)

	// A row without install columns (as an older build writes it) reads
	// back without them; writing them later fills them.
	beta.Install = nil
	ok(t, s.PutBundle(ctx, beta), "PutBundle without install columns")
	got, err = s.GetBundle(ctx, "beta", "0.1.0")
	ok(t, err, "GetBundle")
	same(t, "GetBundle of a row without install columns", got, beta)

	ok(t, s.DeleteBundle(ctx, "alpha", "1.0.0"), "DeleteBundle")
	_, err = s.GetBundle(ctx, "alpha", "1.0.0")
	is(t, err, store.ErrNotFound, "GetBundle after DeleteBundle")
	is(t, s.DeleteBundle(ctx, "alpha", "1.0.0"), store.ErrNotFound, "DeleteBundle twice")
	list("ListBundles after DeleteBundle", alpha2, beta)
}
