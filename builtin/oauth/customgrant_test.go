package oauth_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/oauth"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

const otpGrantType = "urn:example:params:oauth:grant-type:otp"

// otpGrant is a grant type extension that claims otpGrantType and accepts
// the one-time password 123456 for user u-otp.
type otpGrant struct{}

func (otpGrant) HandlesGrantType(gt string) bool { return gt == otpGrantType }

func (otpGrant) Token(_ context.Context, req abi.TokenRequest) (abi.TokenResponse, error) {
	switch req.Params["otp"][0] {
	case "123456":
		return abi.TokenResponse{
			Subject: "u-otp", Scopes: req.Scopes, RefreshToken: true,
			Claims: map[string]any{"amr": []string{"otp"}, "sub": "forged", "client_authenticated": req.ClientAuthenticated},
			Extra:  map[string]any{"note": "otp", "access_token": "forged"},
		}, nil
	case "decline":
		return abi.TokenResponse{Declined: true}, nil
	case "greedy":
		return abi.TokenResponse{Subject: "u-otp", Scopes: []string{"write"}}, nil
	case "forbidden":
		return abi.TokenResponse{}, fault.Forbidden.WithMessage("not for this client")
	}
	return abi.TokenResponse{}, fault.Unauthenticated.WithMessage("wrong one-time password")
}

// declineAll is a grant without a Matcher that declines everything.
type declineAll struct{}

func (declineAll) Token(context.Context, abi.TokenRequest) (abi.TokenResponse, error) {
	return abi.TokenResponse{Declined: true}, nil
}

func TestCustomGrantType(t *testing.T) {
	reg := extension.NewRegistry()
	reg.Register(extension.Module{ID: "grant.otp", Kind: extension.KindGrant, New: func() any { return &otpGrant{} }})
	reg.Register(extension.Module{ID: "grant.decline", Kind: extension.KindGrant, New: func() any { return &declineAll{} }})
	insts, err := reg.Load(context.Background(), []extension.InstanceConfig{{Module: "grant.decline"}, {Module: "grant.otp"}}, extension.LoadOptions{
		Enablement: extension.Enablement{Tenants: map[string]map[extension.Kind][]string{
			"default": {extension.KindGrant: {"grant.decline", "grant.otp"}},
			"acme":    {extension.KindGrant: {}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(d *oauth.Deps) { d.Extensions = insts })
	for _, c := range []store.Client{
		{TenantID: e.def.ID, ClientID: "otp-app", SecretHash: secret.HashClientSecret(secretA), GrantTypes: []string{otpGrantType, "refresh_token"}, Scopes: []string{"read"}, Enabled: true},
		{TenantID: e.acme.ID, ClientID: "otp-app", SecretHash: secret.HashClientSecret(secretA), GrantTypes: []string{otpGrantType}, Scopes: []string{"read"}, Enabled: true},
	} {
		if _, err := e.st.CreateClient(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	form := func(otp string, extra ...string) string {
		v := url.Values{"grant_type": {otpGrantType}, "otp": {otp}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}

	t.Run("granted", func(t *testing.T) {
		r := e.post(oauth.PathToken, formType, form("123456", "scope", "read"), basic("otp-app", secretA))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		body := r.json(t)
		if body["note"] != "otp" || body["refresh_token"] == nil || body["access_token"] == "forged" || body["scope"] != "read" {
			t.Errorf("response: %s", r.body)
		}
		claims := e.claims(body["access_token"].(string))
		if claims["sub"] != "u-otp" || claims["client_id"] != "otp-app" || claims["client_authenticated"] != true {
			t.Errorf("claims: %v", claims)
		}
		if amr, _ := claims["amr"].([]any); len(amr) != 1 || amr[0] != "otp" {
			t.Errorf("amr: %v", claims["amr"])
		}
		info := e.introspect("", body["access_token"].(string))
		if info["active"] != true || info["sub"] != "u-otp" {
			t.Errorf("introspection: %v", info)
		}
	})

	for _, tc := range []struct {
		name, path, body, auth string
		status                 int
		code                   string
	}{
		{"wrong password", oauth.PathToken, form("000000"), basic("otp-app", secretA), 400, "invalid_grant"},
		{"refused by the grant", oauth.PathToken, form("forbidden"), basic("otp-app", secretA), 400, "unauthorized_client"},
		{"every grant declines", oauth.PathToken, form("decline"), basic("otp-app", secretA), 400, "unsupported_grant_type"},
		{"grant gives a scope beyond the client", oauth.PathToken, form("greedy"), basic("otp-app", secretA), 400, "invalid_scope"},
		{"scope beyond the client", oauth.PathToken, form("123456", "scope", "write"), basic("otp-app", secretA), 400, "invalid_scope"},
		{"client not registered", oauth.PathToken, form("123456"), basic("svc-basic", secretA), 400, "unauthorized_client"},
		{"wrong secret", oauth.PathToken, form("123456"), basic("otp-app", secretB), 401, "invalid_client"},
		{"not an absolute URI", oauth.PathToken, "grant_type=otp&otp=123456", basic("otp-app", secretA), 400, "unsupported_grant_type"},
		{"tenant without grant extensions", "/t/acme" + oauth.PathToken, form("123456"), basic("otp-app", secretA), 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.post(tc.path, formType, tc.body, tc.auth), tc.status, tc.code)
		})
	}
}
