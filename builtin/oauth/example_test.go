package oauth_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// ExampleNew wires the provider the way a node does: the store, the key
// manager over it, the public URL, then Mount on the HTTP front's fiber
// application.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "latch-oauth-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = st.Close() }()
	if err := st.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	box, err := secret.NewBox(bytes.Repeat([]byte{1}, secret.MasterKeySize))
	if err != nil {
		fmt.Println(err)
		return
	}
	log := slog.New(slog.DiscardHandler)

	hmacKey, err := secret.DeriveKey(bytes.Repeat([]byte{1}, secret.MasterKeySize), "oauth-hmac")
	if err != nil {
		fmt.Println(err)
		return
	}
	lg, err := login.New(login.Deps{
		Store:          st,
		Authenticators: &extension.Instances{}, // the node's loaded extensions
		PublicURL:      "https://id.example.com",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := oauth.New(oauth.Deps{
		Store:     st,
		Keys:      keys.NewManager(st, box, keys.Options{Logger: log}),
		PublicURL: "https://id.example.com",
		Log:       log,
		Login:     lg,
		HMACKey:   hmacKey,
		// Audit: the node's event bus.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Mount(fiber.New()) // builtin/server's App() in a node
	fmt.Println(p.Issuer("default"))
	fmt.Println(p.Issuer("acme") + oauth.PathToken)
	// Output:
	// https://id.example.com
	// https://id.example.com/t/acme/oauth2/token
}
