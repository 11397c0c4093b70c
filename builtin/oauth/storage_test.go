package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite/sqlitetest"
)

// TestStorageKinds checks the token kinds the client credentials grant
// does not exercise: authorization codes, refresh tokens, client assertion
// ids, and the refusal to work without a tenant.
func TestStorageKinds(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	tn := sqlitetest.Tenant(t, st, "default")
	other := sqlitetest.Tenant(t, st, "other")
	if _, err := st.CreateClient(ctx, store.Client{TenantID: tn.ID, ClientID: "app", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	s := &storage{st: st, maxLifetime: time.Hour}
	tctx := withTenant(ctx, tenantInfo{id: tn.ID, name: tn.Name, issuer: "https://id.example.com"})
	octx := withTenant(ctx, tenantInfo{id: other.ID, name: other.Name, issuer: "https://id.example.com/t/other"})

	newReq := func() *fosite.Request {
		sess := newSession()
		sess.Subject = "user-1"
		sess.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
		sess.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
		r := fosite.NewRequest()
		r.Client = &client{id: "app"}
		r.Session = sess
		r.GrantScope("read")
		r.Form.Set("client_secret", "must-not-be-stored")
		return r
	}

	t.Run("code", func(t *testing.T) {
		req := newReq()
		if err := s.CreateAuthorizeCodeSession(tctx, "code-sig", req); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAuthorizeCodeSession(tctx, "code-sig", nil)
		if err != nil || got.GetID() != req.GetID() || got.GetSession().GetSubject() != "user-1" || !got.GetGrantedScopes().Has("read") {
			t.Fatalf("got %+v, %v", got, err)
		}
		if got.GetRequestForm().Get("client_secret") != "" {
			t.Error("client_secret stored")
		}
		if _, err := s.GetAuthorizeCodeSession(octx, "code-sig", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("other tenant: %v", err)
		}
		if err := s.InvalidateAuthorizeCodeSession(tctx, "code-sig"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAuthorizeCodeSession(tctx, "code-sig", nil); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil {
			t.Errorf("used code: %v, %v", got, err)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		req := newReq()
		if err := s.CreateRefreshTokenSession(tctx, "rt-sig", "at-sig", req); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRefreshTokenSession(tctx, "rt-sig", newSession()); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeRefreshToken(tctx, req.GetID()); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetRefreshTokenSession(tctx, "rt-sig", nil); !errors.Is(err, fosite.ErrInactiveToken) || got == nil {
			t.Errorf("revoked: %v, %v", got, err)
		}
		if err := s.DeleteRefreshTokenSession(tctx, "rt-sig"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRefreshTokenSession(tctx, "rt-sig"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})

	t.Run("client assertion jti", func(t *testing.T) {
		if err := s.ClientAssertionJWTValid(tctx, "jti-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClientAssertionJWT(tctx, "jti-1", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.ClientAssertionJWTValid(tctx, "jti-1"); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("reused jti: %v", err)
		}
		if err := s.SetClientAssertionJWT(tctx, "jti-1", time.Now().Add(time.Minute)); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("recording a reused jti: %v", err)
		}
		if err := s.ClientAssertionJWTValid(octx, "jti-1"); err != nil {
			t.Errorf("other tenant: %v", err)
		}
	})

	t.Run("no tenant", func(t *testing.T) {
		if _, err := s.GetClient(ctx, "app"); !errors.Is(err, errNoTenant) {
			t.Errorf("GetClient: %v", err)
		}
		if err := s.CreateAccessTokenSession(ctx, "sig", newReq()); !errors.Is(err, errNoTenant) {
			t.Errorf("CreateAccessTokenSession: %v", err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "sig", nil); !errors.Is(err, errNoTenant) {
			t.Errorf("GetAccessTokenSession: %v", err)
		}
	})
}

func TestSettingLifetime(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want time.Duration
	}{
		{float64(120), 2 * time.Minute},
		{120, 2 * time.Minute},
		{int64(1), time.Second},
		{float64(0.5), 0},
		{-5, 0},
		{"120", 0},
		{nil, 0},
		{float64(1e12), time.Hour},
	} {
		if got := settingLifetime(tc.v, time.Hour); got != tc.want {
			t.Errorf("settingLifetime(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
