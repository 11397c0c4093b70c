package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/latchid/latch/builtin/admin"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Bootstrap names: the first admin user and the admin API client.
const (
	BootstrapAdminUser = "admin"
	BootstrapClientID  = "latch-admin"
)

type bootstrapDeps struct {
	store         store.Store
	keys          *keys.Manager
	hasher        interface{ Hash(string) (string, error) }
	log           *slog.Logger
	out           io.Writer
	adminPassword string
	clientSecret  string
	publicURL     string
}

// bootstrap makes sure the default tenant, its signing keys, the admin user
// and the admin client exist. What it creates with a generated credential is
// printed once to d.out; nothing is created or printed on later starts.
// Several nodes may run it at once: a lost creation race is not an error.
func bootstrap(ctx context.Context, d bootstrapDeps) error {
	t, err := d.store.GetTenantByName(ctx, store.DefaultTenantName)
	if errors.Is(err, store.ErrNotFound) {
		t, err = d.store.CreateTenant(ctx, store.Tenant{Name: store.DefaultTenantName, DisplayName: "Default", Enabled: true})
		if errors.Is(err, store.ErrConflict) {
			t, err = d.store.GetTenantByName(ctx, store.DefaultTenantName)
		}
		if err == nil {
			d.log.InfoContext(ctx, "created the default tenant", "tenant", t.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("creating default tenant: %w", err)
	}
	if err := d.keys.EnsureKeys(ctx, t.ID); err != nil {
		return fmt.Errorf("creating signing keys: %w", err)
	}

	var printed []string
	if _, err := d.store.GetUserByUsername(ctx, t.ID, BootstrapAdminUser); errors.Is(err, store.ErrNotFound) {
		pw, generated := d.adminPassword, false
		if pw == "" {
			if pw, err = secret.RandomToken(18); err != nil {
				return err
			}
			generated = true
		}
		hash, err := d.hasher.Hash(pw)
		if err != nil {
			return fmt.Errorf("hashing admin password: %w", err)
		}
		_, err = d.store.CreateUser(ctx, store.User{TenantID: t.ID, Username: BootstrapAdminUser, PasswordHash: hash, DisplayName: "Administrator", Enabled: true})
		switch {
		case errors.Is(err, store.ErrConflict):
		case err != nil:
			return fmt.Errorf("creating admin user: %w", err)
		case generated:
			printed = append(printed, fmt.Sprintf("  admin user:     %s / %s", BootstrapAdminUser, pw))
		default:
			d.log.InfoContext(ctx, "created the admin user from LATCH_BOOTSTRAP_ADMIN_PASSWORD", "username", BootstrapAdminUser)
		}
	} else if err != nil {
		return fmt.Errorf("looking up admin user: %w", err)
	}

	if _, err := d.store.GetClientByClientID(ctx, t.ID, BootstrapClientID); errors.Is(err, store.ErrNotFound) {
		sec, generated := d.clientSecret, false
		if sec == "" {
			if sec, err = secret.GenerateClientSecret(); err != nil {
				return err
			}
			generated = true
		}
		_, err = d.store.CreateClient(ctx, store.Client{
			TenantID: t.ID, ClientID: BootstrapClientID, Name: "Latch admin API client",
			SecretHash: secret.HashClientSecret(sec), FirstParty: true,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{admin.ScopeAdmin},
			TokenEndpointAuthMethod: "client_secret_basic", Enabled: true,
		})
		switch {
		case errors.Is(err, store.ErrConflict):
		case err != nil:
			return fmt.Errorf("creating admin client: %w", err)
		case generated:
			printed = append(printed, fmt.Sprintf("  admin client:   %s / %s", BootstrapClientID, sec))
		default:
			d.log.InfoContext(ctx, "created the admin client from LATCH_BOOTSTRAP_CLIENT_SECRET", "client_id", BootstrapClientID)
		}
	} else if err != nil {
		return fmt.Errorf("looking up admin client: %w", err)
	}

	if len(printed) > 0 {
		fmt.Fprintf(d.out, "\nLatch created these credentials on first start. They are shown once; store them now.\n")
		for _, l := range printed {
			fmt.Fprintln(d.out, l)
		}
		fmt.Fprintf(d.out, "  admin API:      %s%s (HTTP Basic with the admin client)\n\n", d.publicURL, admin.BasePath)
	}
	return nil
}
