package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"
)

// nonceProvider is a provider with only what the nonces need.
func nonceProvider(t *testing.T) *Provider {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return &Provider{d: Deps{HMACKey: key}}
}

func TestDPoPNonceValidity(t *testing.T) {
	p, other := nonceProvider(t), nonceProvider(t)
	tenant, tenant2 := tenantInfo{id: "t1"}, tenantInfo{id: "t2"}
	// Just before an hour boundary, so that the key rotates in the
	// nonce's lifetime.
	issued := time.Unix(1_800_000_000/3600*3600+3599, 0)
	nonce := p.newDPoPNonce(tenant, issued)
	tampered := []byte(nonce)
	tampered[len(tampered)-2] ^= 1
	for name, tc := range map[string]struct {
		p     *Provider
		t     tenantInfo
		nonce string
		at    time.Time
		want  bool
	}{
		"Fresh":                {p, tenant, nonce, issued, true},
		"AfterKeyRotation":     {p, tenant, nonce, issued.Add(4 * time.Minute), true},
		"Stale":                {p, tenant, nonce, issued.Add(dpopNonceLifetime + time.Second), false},
		"FromTheFuture":        {p, tenant, nonce, issued.Add(-time.Minute), false},
		"WithinLeeway":         {p, tenant, nonce, issued.Add(-dpopNonceLeeway / 2), true},
		"OtherTenant":          {p, tenant2, nonce, issued, false},
		"OtherServersKey":      {other, tenant, nonce, issued, false},
		"Tampered":             {p, tenant, string(tampered), issued, false},
		"NotBase64":            {p, tenant, "not a nonce!", issued, false},
		"TooShort":             {p, tenant, nonce[:10], issued, false},
		"TimestampOnlyForgery": {p, tenant, base64.RawURLEncoding.EncodeToString(make([]byte, 8+dpopNonceMACLen)), issued, false},
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := tc.p.dpopNonceIssued(tc.t, tc.nonce, tc.at); ok != tc.want {
				t.Errorf("valid = %v, want %v", ok, tc.want)
			}
		})
	}
}

func TestDPoPNonceRequired(t *testing.T) {
	p := nonceProvider(t)
	on := map[string]any{ClientSettingDPoPNonceRequired: true}
	if p.dpopNonceRequired(tenantInfo{}, nil) || p.dpopNonceRequired(tenantInfo{}, map[string]any{ClientSettingDPoPNonceRequired: "yes"}) {
		t.Error("required without any setting")
	}
	if !p.dpopNonceRequired(tenantInfo{}, on) {
		t.Error("the client setting is not honoured")
	}
	if !p.dpopNonceRequired(tenantInfo{settings: map[string]any{TenantSettingDPoPNonceRequired: true}}, nil) {
		t.Error("the tenant setting is not honoured")
	}
	p.d.DPoPNonceRequired = true
	if !p.dpopNonceRequired(tenantInfo{}, nil) {
		t.Error("the node option is not honoured")
	}
}

// TestCheckDPoPNonce runs proofs made with go-jose through the check of
// the token endpoint: the answer's error and its DPoP-Nonce header.
func TestCheckDPoPNonce(t *testing.T) {
	p := nonceProvider(t)
	tenant := tenantInfo{id: "t1"}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	proofWith := func(nonce any) *dpopProof {
		claims := map[string]any{"jti": rand.Text(), "htm": "POST", "htu": testHTU, "iat": now.Unix()}
		if nonce != nil {
			claims["nonce"] = nonce
		}
		proof, err := parseDPoPProof(signProof(t, key, dpopType, jose.JSONWebKey{Key: &key.PublicKey}, claims), "POST", testHTU, "", now)
		if err != nil {
			t.Fatal(err)
		}
		return &proof
	}
	for name, tc := range map[string]struct {
		nonce     any
		wantErr   bool
		wantFresh bool
	}{
		"Missing":       {nil, true, true},
		"NotAString":    {42, true, true},
		"Forged":        {base64.RawURLEncoding.EncodeToString(make([]byte, 24)), true, true},
		"Stale":         {p.newDPoPNonce(tenant, now.Add(-dpopNonceLifetime-time.Second)), true, true},
		"Valid":         {p.newDPoPNonce(tenant, now), false, false},
		"AboutToExpire": {p.newDPoPNonce(tenant, now.Add(-dpopNonceLifetime+dpopNonceRefresh/2)), false, true},
	} {
		t.Run(name, func(t *testing.T) {
			app := fiber.New()
			app.Post("/", func(c *fiber.Ctx) error {
				if err := p.checkDPoPNonce(c, tenant, proofWith(tc.nonce)); err != nil {
					if !errors.Is(err, errUseDPoPNonce) {
						t.Errorf("error %v, want use_dpop_nonce", err)
					}
					return c.SendStatus(http.StatusBadRequest)
				}
				return c.SendStatus(http.StatusOK)
			})
			resp, err := app.Test(httptest.NewRequest(http.MethodPost, "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := resp.StatusCode == http.StatusBadRequest; got != tc.wantErr {
				t.Errorf("refused = %v, want %v", got, tc.wantErr)
			}
			fresh := resp.Header.Get(headerDPoPNonce)
			if (fresh != "") != tc.wantFresh {
				t.Fatalf("DPoP-Nonce %q, want one: %v", fresh, tc.wantFresh)
			}
			if fresh != "" {
				if _, ok := p.dpopNonceIssued(tenant, fresh, time.Now()); !ok {
					t.Errorf("the fresh nonce %q is not valid", fresh)
				}
			}
		})
	}
}
