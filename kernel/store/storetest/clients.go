package storetest

import (
	"fmt"
	"testing"

	"github.com/latchid/latch/kernel/store"
)

func testClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	tid := mkTenant(t, s, "acme").ID
	want := store.Client{
		TenantID: tid, ClientID: "web-app", Name: "Web App", SecretHash: "hash", Public: false, FirstParty: true,
		RedirectURIs:  []string{"https://app.example.com/cb", "http://localhost:8080/cb?x=1&y=2"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile", "email"}, Audience: []string{"api"},
		TokenEndpointAuthMethod: "client_secret_basic", Enabled: true,
		Settings: map[string]any{"access_token_ttl": "15m", "pkce": map[string]any{"required": true}},
	}
	got, err := s.CreateClient(ctx, want)
	ok(t, err, "CreateClient")
	if got.ID == "" || got.CreatedAt.IsZero() {
		t.Fatalf("CreateClient did not set the id and times: %+v", got)
	}
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, got.CreatedAt, got.UpdatedAt
	same(t, "CreateClient result", got, want)
	c, err := s.GetClient(ctx, tid, got.ID)
	ok(t, err, "GetClient")
	same(t, "GetClient", c, want)
	c, err = s.GetClientByClientID(ctx, tid, "web-app")
	ok(t, err, "GetClientByClientID")
	same(t, "GetClientByClientID", c, want)
	_, err = s.GetClientByClientID(ctx, tid, "mobile")
	is(t, err, store.ErrNotFound, "GetClientByClientID of a missing client id")
	_, err = s.GetClient(ctx, tid, store.NewID())
	is(t, err, store.ErrNotFound, "GetClient of a missing id")

	_, err = s.CreateClient(ctx, store.Client{TenantID: tid, ClientID: "web-app"})
	is(t, err, store.ErrConflict, "CreateClient with a taken client id")
	_, err = s.CreateClient(ctx, store.Client{TenantID: tid, Name: "no id"})
	is(t, err, store.ErrInvalid, "CreateClient without a client id")
	public, err := s.CreateClient(ctx, store.Client{TenantID: tid, ClientID: "spa", Public: true})
	ok(t, err, "CreateClient of a public client")
	p, err := s.GetClient(ctx, tid, public.ID)
	ok(t, err, "GetClient")
	same(t, "GetClient of a public client", p, public)

	upd := c
	upd.ClientID, upd.RedirectURIs, upd.Scopes, upd.Enabled, upd.Settings = "web", []string{"https://new/cb"}, nil, false, nil
	u, err := s.UpdateClient(ctx, upd)
	ok(t, err, "UpdateClient")
	c, err = s.GetClient(ctx, tid, upd.ID)
	ok(t, err, "GetClient after UpdateClient")
	same(t, "GetClient after UpdateClient", c, u)
	if c.ClientID != "web" || len(c.RedirectURIs) != 1 || len(c.Scopes) != 0 || c.Enabled || !c.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("UpdateClient did not replace the fields: %+v", c)
	}
	upd.ClientID = "spa"
	_, err = s.UpdateClient(ctx, upd)
	is(t, err, store.ErrConflict, "UpdateClient to a taken client id")
	upd.ClientID = ""
	_, err = s.UpdateClient(ctx, upd)
	is(t, err, store.ErrInvalid, "UpdateClient to an empty client id")
	_, err = s.UpdateClient(ctx, store.Client{ID: store.NewID(), TenantID: tid, ClientID: "ghost"})
	is(t, err, store.ErrNotFound, "UpdateClient of a missing id")

	all := []string{c.ID, public.ID}
	for i := range 3 {
		x, err := s.CreateClient(ctx, store.Client{TenantID: tid, ClientID: fmt.Sprint("c", i)})
		ok(t, err, "CreateClient")
		all = append(all, x.ID)
	}
	keys := collectPages(t, 2, func(p store.Page) ([]store.Client, string, error) { return s.ListClients(ctx, tid, p) },
		func(c store.Client) string { return c.ID })
	checkPaged(t, "ListClients by 2", keys, all)

	ok(t, s.DeleteClient(ctx, tid, public.ID), "DeleteClient")
	_, err = s.GetClientByClientID(ctx, tid, "spa")
	is(t, err, store.ErrNotFound, "GetClientByClientID after DeleteClient")
	is(t, s.DeleteClient(ctx, tid, public.ID), store.ErrNotFound, "DeleteClient twice")
}
