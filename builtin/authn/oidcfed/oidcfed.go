// Package oidcfed is the authn.oidc_federation extension: a login step
// that sends the browser to an upstream OpenID Provider (another Latch, a
// corporate IDP, a social login) and signs in the local user its answer
// resolves to.
//
// The round trip is the authorization code flow with PKCE (S256), a nonce
// and a state, all single-use and bound to the login flow (see package
// federation). The provider's discovery document and key set are fetched
// through the SSRF-guarded client of package federation; the ID token is
// verified with go-oidc (signature, issuer, audience, expiry) and its
// nonce compared in constant time; an RFC 9207 iss parameter, when sent,
// must name the configured issuer. The upstream's claims are mapped to
// local attributes, then the identity resolves to a local user through
// its link, the signed-in user of an earlier step, a verified email
// (link_by_email), or just-in-time creation (jit: create).
//
// The callback is {base}/login/federated/{instance}/callback; register it
// at the upstream as the client's redirect URI.
package oidcfed

import (
	"cmp"
	"context"
	"crypto/subtle"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "authn.oidc_federation"

// OpCallback is the endpoint the upstream redirects back to.
const OpCallback = "callback"

// providerRetry is how long a failed discovery is remembered before it is
// tried again.
const providerRetry = 30 * time.Second

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.oidc_federation module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Sign-in through an upstream OpenID Provider (code flow with PKCE), with just-in-time provisioning and account linking.",
	}
}

// DefaultClaims maps local attributes to the standard claims of OpenID
// Connect Core section 5.1; the claims config overrides it per attribute.
var DefaultClaims = map[string]string{
	federation.AttrUsername:      "preferred_username",
	federation.AttrEmail:         "email",
	federation.AttrEmailVerified: "email_verified",
	federation.AttrDisplayName:   "name",
	federation.AttrGivenName:     "given_name",
	federation.AttrFamilyName:    "family_name",
	federation.AttrPhoneNumber:   "phone_number",
}

// Authenticator is an authn.oidc_federation instance; its exported fields
// are its configuration (see config.schema.json).
type Authenticator struct {
	// Issuer is the upstream's issuer identifier; discovery is at
	// {issuer}/.well-known/openid-configuration.
	Issuer string `json:"issuer"`
	// ClientID and ClientSecret are Latch's client at the upstream;
	// ClientSecretFile, when set, holds the secret instead.
	ClientID         string        `json:"client_id"`
	ClientSecret     config.Secret `json:"client_secret,omitempty"`
	ClientSecretFile string        `json:"client_secret_file,omitempty"`
	// Scopes are requested; "openid" is always added.
	Scopes []string `json:"scopes,omitempty"`
	// Claims maps local attributes to upstream claims, over
	// DefaultClaims.
	Claims map[string]string `json:"claims,omitempty"`
	// UserInfo fetches the UserInfo endpoint too and adds its claims
	// (its sub must equal the ID token's). Default true.
	UserInfo *bool `json:"userinfo,omitempty"`
	// Label is the text of the button that offers this sign-in.
	Label string `json:"label,omitempty"`
	// JIT is federation.JITCreate, JITLinkOnly (default) or JITOff.
	JIT string `json:"jit,omitempty"`
	// LinkByEmail links an unlinked identity to the one local user with
	// its email address, when the upstream asserts email_verified.
	LinkByEmail bool `json:"link_by_email,omitempty"`
	// AllowPrivateNetworks lets the instance reach an upstream on
	// loopback or private addresses, over http too (development, tests).
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`

	name     string
	secret   string
	st       federation.Store
	accounts *federation.Accounts
	client   *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider
	provErr  error
	provAt   time.Time
}

// Provision reads the configuration, the secret and the dependencies.
func (a *Authenticator) Provision(ctx context.Context, env extension.Env) error {
	a.name = env.Name
	a.JIT = cmp.Or(a.JIT, federation.JITLinkOnly)
	a.Label = cmp.Or(a.Label, "Sign in with "+a.Issuer)
	a.secret = a.ClientSecret.Value()
	if a.ClientSecretFile != "" {
		b, err := os.ReadFile(a.ClientSecretFile)
		if err != nil {
			return fmt.Errorf("provisioning %s: reading client_secret_file: %w", ID, err)
		}
		a.secret = strings.TrimRight(string(b), "\r\n")
	}
	su, err := federation.NewSetup(env, ID, a.AllowPrivateNetworks)
	if err != nil {
		return err
	}
	a.st, a.accounts, a.client, a.log = su.Store, su.Accounts, su.Client, su.Log
	if !slices.Contains(a.Scopes, oidc.ScopeOpenID) {
		a.Scopes = append([]string{oidc.ScopeOpenID}, a.Scopes...)
	}
	return nil
}

// Validate checks the issuer and the client.
func (a *Authenticator) Validate() error {
	var errs []extension.FieldError
	if err := safehttp.CheckURL(a.Issuer, a.AllowPrivateNetworks); err != nil {
		errs = append(errs, extension.FieldError{Path: "config.issuer", Message: err.Error()})
	}
	if a.ClientID == "" {
		errs = append(errs, extension.FieldError{Path: "config.client_id", Message: "is required"})
	}
	if a.ClientSecret != "" && a.ClientSecretFile != "" {
		errs = append(errs, extension.FieldError{Path: "config.client_secret_file", Message: "set client_secret or client_secret_file, not both"})
	}
	if len(errs) > 0 {
		return &extension.ConfigError{Fields: errs}
	}
	return nil
}

// ButtonLabel is the text of the button that offers this sign-in.
func (a *Authenticator) ButtonLabel() string { return a.Label }

// discover returns the upstream's provider, discovering it on first use;
// a failure is remembered for providerRetry.
func (a *Authenticator) discover(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	if a.provErr != nil && time.Since(a.provAt) < providerRetry {
		return nil, a.provErr
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), a.client), federation.FetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.Issuer)
	if err != nil {
		a.provErr, a.provAt = fault.Unavailable.WithMessage("the identity provider is unreachable").
			WithCause(fmt.Errorf("discovering %s: %w", a.Issuer, err)), time.Now()
		return nil, a.provErr
	}
	a.provider, a.provErr = p, nil
	return p, nil
}

func (a *Authenticator) oauth2Config(p *oidc.Provider, base string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: a.ClientID, ClientSecret: a.secret, Endpoint: p.Endpoint(), Scopes: a.Scopes,
		RedirectURL: federation.EndpointURL(base, a.name, OpCallback),
	}
}

// stepState is what the instance keeps in the login flow between the
// redirect and the return.
type stepState struct {
	Key string `json:"k"`
}

// Authenticate sends the browser to the upstream, or, when it is back
// with a result for this flow, answers authenticated.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	tenant, err := a.st.GetTenantByName(ctx, req.Tenant)
	if err != nil {
		return abi.AuthenticateResponse{}, fmt.Errorf("loading tenant %q: %w", req.Tenant, err)
	}
	if len(req.State) > 0 {
		var s stepState
		if json.Unmarshal(req.State, &s) == nil && s.Key != "" {
			r, err := federation.TakeResult(ctx, a.st, tenant.ID, s.Key)
			switch {
			case err == nil:
				return a.finish(req, r), nil
			case !errors.Is(err, store.ErrNotFound):
				return abi.AuthenticateResponse{}, err
			}
		}
	}
	p, err := a.discover(ctx)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	base, err := federation.BaseFromCallback(req.CallbackURL)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	key, err := federation.NewKey()
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	nonce, err := federation.NewKey()
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	verifier := oauth2.GenerateVerifier()
	if err := federation.SavePending(ctx, a.st, tenant.ID, key, federation.Pending{
		Instance: a.name, FlowID: req.FlowID, Return: req.CallbackURL, KnownSubject: req.KnownSubject,
		Nonce: nonce, Verifier: verifier,
	}); err != nil {
		return abi.AuthenticateResponse{}, err
	}
	state, _ := json.Marshal(stepState{Key: key})
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		State:   state,
		Challenge: &abi.Challenge{
			Kind: abi.ChallengeRedirect,
			URL:  a.oauth2Config(p, base).AuthCodeURL(key, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)),
		},
	}, nil
}

// finish answers for a result the endpoint left for this flow.
func (a *Authenticator) finish(req abi.AuthenticateRequest, r federation.Result) abi.AuthenticateResponse {
	if r.FlowID != req.FlowID || r.Instance != a.name || (req.KnownSubject != "" && req.KnownSubject != r.UserID) {
		return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeAuthenticated, Subject: r.UserID, Issuer: r.Issuer, Claims: r.Claims, AMR: r.AMR,
	}
}

// errorCodeRE is what an upstream's error code may look like to be
// logged (RFC 6749 section 4.1.2.1: printable ASCII, no quotes).
var errorCodeRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ServeFederation serves the callback: it verifies the upstream's answer,
// resolves the local account and sends the browser back to its login flow.
func (a *Authenticator) ServeFederation(ctx context.Context, r *federation.Request) (*federation.Response, error) {
	if r.Op != OpCallback || r.Method != http.MethodGet {
		return nil, federation.Refuse(http.StatusNotFound, "There is nothing here.", fmt.Errorf("op %s %q", r.Method, r.Op))
	}
	tenant, err := a.st.GetTenantByName(ctx, r.Tenant)
	if err != nil {
		return nil, fmt.Errorf("loading tenant %q: %w", r.Tenant, err)
	}
	key := r.Params.Get("state")
	p, err := federation.TakePending(ctx, a.st, tenant.ID, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, federation.Refuse(federation.StatusBad, federation.MsgExpired, errors.New("unknown, expired or used state"))
	case err != nil:
		return nil, err
	case p.Instance != a.name:
		return nil, federation.Refuse(federation.StatusBad, federation.MsgExpired, fmt.Errorf("state of instance %q", p.Instance))
	}
	if e := r.Params.Get("error"); e != "" {
		if !errorCodeRE.MatchString(e) {
			e = "(malformed)"
		}
		return nil, federation.Refuse(http.StatusUnauthorized, federation.MsgCanceled, fmt.Errorf("upstream answered error %s", e))
	}
	if iss := r.Params.Get("iss"); iss != "" && iss != a.Issuer {
		return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("iss parameter %q is not the issuer", truncate(iss, 200)))
	}
	code := r.Params.Get("code")
	if code == "" || len(code) > 4096 {
		return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, errors.New("no code"))
	}
	prov, err := a.discover(ctx)
	if err != nil {
		return nil, err
	}
	base, err := federation.BaseFromCallback(p.Return)
	if err != nil {
		return nil, err
	}
	hctx := oidc.ClientContext(ctx, a.client)
	tok, err := a.oauth2Config(prov, base).Exchange(hctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("exchanging the code: %s %s", re.ErrorCode, truncate(re.ErrorDescription, 200)))
		}
		return nil, fault.Unavailable.WithMessage("the identity provider is unreachable").WithCause(fmt.Errorf("exchanging the code: %w", err))
	}
	claims, subject, err := a.verify(hctx, prov, tok, p.Nonce)
	if err != nil {
		return nil, err
	}
	id := federation.Map(a.name, a.Issuer, subject, claims, a.Claims, DefaultClaims)
	acc, err := a.accounts.Resolve(ctx, tenant, id, federation.Policy{JIT: a.JIT, LinkByEmail: a.LinkByEmail}, p.KnownSubject)
	if err != nil {
		return nil, err
	}
	if err := federation.SaveResult(ctx, a.st, tenant.ID, key, federation.Result{
		FlowID: p.FlowID, Instance: a.name, UserID: acc.UserID, Username: acc.Username,
		Issuer: a.Issuer, Subject: subject, Claims: federation.Claims(id, acc), AMR: amr(claims),
		Created: acc.Created, Linked: acc.Linked,
	}); err != nil {
		return nil, err
	}
	return &federation.Response{Redirect: p.Return, Events: federation.AccountEvents(id, acc)}, nil
}

// verify checks the ID token of tok (and the UserInfo answer, when
// configured) and returns the upstream claims and subject.
func (a *Authenticator) verify(ctx context.Context, prov *oidc.Provider, tok *oauth2.Token, nonce string) (map[string]any, string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, errors.New("token response without id_token"))
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: a.ClientID}).Verify(ctx, raw)
	if err != nil {
		return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("verifying the id token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, errors.New("id token nonce does not match"))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("verifying at_hash: %w", err))
		}
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, errors.New("id token subject empty or over 255 bytes"))
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("reading id token claims: %w", err))
	}
	if (a.UserInfo == nil || *a.UserInfo) && prov.UserInfoEndpoint() != "" && tok.AccessToken != "" {
		ui, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, "", fault.Unavailable.WithMessage("the identity provider is unreachable").WithCause(fmt.Errorf("fetching userinfo: %w", err))
		}
		if ui.Subject != idt.Subject {
			return nil, "", federation.Refuse(federation.StatusBad, federation.MsgUnverified, errors.New("userinfo sub differs from the id token's"))
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err == nil {
			for k, v := range extra {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	return claims, idt.Subject, nil
}

// amr returns the upstream's authentication methods, when it names them.
func amr(claims map[string]any) []string {
	list, _ := claims["amr"].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && len(s) <= 32 && len(out) < 8 {
			out = append(out, s)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ extension.Provisioner = (*Authenticator)(nil)
	_ extension.Validator   = (*Authenticator)(nil)
	_ federation.Endpoint   = (*Authenticator)(nil)
)
