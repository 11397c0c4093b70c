package keys

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/kernel/secret"
)

func ExampleManager() {
	ctx := context.Background()
	box, _ := secret.NewBox(make([]byte, secret.MasterKeySize)) // use LoadOrCreateMasterKey
	st := newMemKeys(newFakeClock().Now)                        // use the real store
	m := NewManager(st, box, Options{Logger: slog.New(slog.DiscardHandler)})

	// At tenant creation.
	if err := m.EnsureKeys(ctx, "tenant-1"); err != nil {
		panic(err)
	}

	// Per token.
	signer, err := m.Signer(ctx, "tenant-1", "")
	if err != nil {
		panic(err)
	}
	jws, _ := signer.Sign([]byte(`{"sub":"alice"}`))
	token, _ := jws.CompactSerialize()

	// A relying party verifies with the published key set.
	set, _ := m.PublicJWKS(ctx, "tenant-1")
	parsed, _ := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	key := set.Key(parsed.Signatures[0].Protected.KeyID)[0]
	payload, err := parsed.Verify(&key)
	fmt.Println(signer.Algorithm(), key.Use, string(payload), err)
	// Output: ES256 sig {"sub":"alice"} <nil>
}
