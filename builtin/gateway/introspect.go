package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// maxIntrospectionBytes bounds an introspection answer.
const maxIntrospectionBytes = 64 << 10

// introspector validates an issuer's opaque tokens by RFC 7662 token
// introspection, caching active answers for cache_ttl (never past exp) and
// inactive ones for negative_cache_ttl.
type introspector struct {
	is       *issuerRT
	cfg      IntrospectionConfig
	secret   string
	client   *http.Client
	positive *tokenCache
	negative *tokenCache
}

func newIntrospector(is *issuerRT) (*introspector, error) {
	c := *is.cfg.Introspection
	in := &introspector{is: is, cfg: c, client: safeClient(is.cfg.AllowPrivateNetwork),
		positive: newTokenCache(c.CacheTTL, 100_000), negative: newTokenCache(c.NegativeCacheTTL, 100_000)}
	if c.ClientSecretEnv != "" {
		v, ok := os.LookupEnv(c.ClientSecretEnv)
		if !ok {
			return nil, fmt.Errorf("%w: issuers %q introspection: environment variable %s (client_secret_env) is not set",
				ErrInvalidConfig, is.cfg.Name, c.ClientSecretEnv)
		}
		in.secret = v
	}
	return in, nil
}

// introspection is the part of an RFC 7662 section 2.2 answer the gateway
// reads; every member is kept in claims.
type introspection struct {
	Active   bool         `json:"active"`
	Scope    string       `json:"scope"`
	ClientID string       `json:"client_id"`
	Subject  string       `json:"sub"`
	Issuer   string       `json:"iss"`
	Audience jwt.Audience `json:"aud"`
	Expiry   int64        `json:"exp"`
	NotBef   int64        `json:"nbf"`
}

// check returns the principal of an active token, nil for an inactive one,
// or an error when the endpoint cannot answer.
func (in *introspector) check(ctx context.Context, raw string, now time.Time) (*principal, error) {
	if p := in.positive.get(raw, now); p != nil {
		return p, nil
	}
	if in.negative.get(raw, now) != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspecting: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.secret)) // RFC 6749 section 2.3.1
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspecting at %s: %w", in.cfg.Endpoint, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspecting at %s: status %d", in.cfg.Endpoint, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBytes+1))
	if err != nil || len(b) > maxIntrospectionBytes {
		return nil, fmt.Errorf("introspecting at %s: reading the answer failed or it is too long", in.cfg.Endpoint)
	}
	var ans introspection
	var all map[string]any
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("introspecting at %s: %w", in.cfg.Endpoint, err)
	}
	_ = json.Unmarshal(b, &all)
	skew := in.is.cfg.ClockSkew
	switch {
	case !ans.Active,
		ans.Issuer != "" && ans.Issuer != in.is.cfg.Issuer,
		ans.Expiry != 0 && now.Add(-skew).After(time.Unix(ans.Expiry, 0)),
		ans.NotBef != 0 && now.Add(skew).Before(time.Unix(ans.NotBef, 0)):
		in.negative.put(raw, &principal{expiry: now.Add(in.cfg.NegativeCacheTTL)}, now)
		return nil, nil
	}
	expiry := now.Add(24 * time.Hour)
	if ans.Expiry != 0 {
		expiry = time.Unix(ans.Expiry, 0).Add(skew)
	}
	p := &principal{issuer: in.is, subject: ans.Subject, clientID: ans.ClientID, scopes: strings.Fields(ans.Scope),
		audience: ans.Audience, claims: all, expiry: expiry, raw: raw}
	if c := in.is.cfg.ClientIDClaim; c != "" {
		p.clientID = clientIDOf(all, c)
	}
	in.positive.put(raw, p, now)
	return p, nil
}

// introspect validates an opaque token with each introspecting issuer in
// turn; the first that calls it active wins.
func (v *validator) introspect(ctx context.Context, raw string, now time.Time) (*principal, *tokenError) {
	var unavailable *issuerRT
	for _, in := range v.introspectors {
		p, err := in.check(ctx, raw, now)
		if err != nil {
			unavailable = in.is
			continue
		}
		if p != nil {
			return p, nil
		}
	}
	if unavailable != nil {
		return nil, &tokenError{reason: "the token cannot be introspected now", unavailable: true, issuer: unavailable}
	}
	return nil, refuse("the token is not active")
}
