package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/kernel/store"
)

// grantTypeSAML2Bearer is the SAML 2.0 bearer assertion grant (RFC 7522).
const grantTypeSAML2Bearer = "urn:ietf:params:oauth:grant-type:saml2-bearer" //nolint:gosec // G101: a URN, not a credential.

// SettingSAML2BearerIssuers is the key, in store.Client.Settings and in
// store.Tenant.Settings, of the SAML IdPs whose assertions the SAML 2.0
// bearer grant accepts: a JSON array of objects
//
//	{"issuer": "<entity ID>", "certificate": "<PEM or base64 DER>",
//	 "scopes": ["..."], "subject": "username" | "id"}
//
// A client's own list is searched first, then the tenant's. "subject"
// says how the assertion's NameID names the local user: by username (the
// default) or by user id. "scopes", when set, bounds the scopes a token
// obtained with that IdP's assertions may carry.
const SettingSAML2BearerIssuers = "saml2_bearer_issuers" //nolint:gosec // G101: a settings key, not a credential.

// samlIssuer is one entry of SettingSAML2BearerIssuers.
type samlIssuer struct {
	Issuer      string   `json:"issuer"`
	Certificate string   `json:"certificate"`
	Scopes      []string `json:"scopes,omitempty"`
	Subject     string   `json:"subject,omitempty"`
}

// samlIssuers reads a list of trusted SAML IdPs; malformed entries are
// skipped.
func samlIssuers(settings map[string]any) []samlIssuer {
	return settingList(settings, SettingSAML2BearerIssuers, func(si samlIssuer) bool {
		return si.Issuer != "" && si.Certificate != "" && (si.Subject == "" || si.Subject == "username" || si.Subject == "id")
	})
}

// userByName finds a user by username; store.Store has it.
type userByName interface {
	GetUserByUsername(ctx context.Context, tenantID, username string) (store.User, error)
}

// samlBearerAssertion judges a SAML 2.0 bearer assertion grant (RFC 7522
// section 2.1): the assertion parameter is a base64url SAML Assertion
// from an IdP the client or the tenant trusts, verified by
// saml.VerifyBearerAssertion (enveloped signature over the Assertion
// itself, Issuer, bearer SubjectConfirmation for the token endpoint,
// Audience the token endpoint or the issuer, time bounds with a bounded
// skew), used once (its ID is kept until it expires), and naming an
// enabled local user. The token is for that user, with the requested
// scopes (each the client's, and the IdP's when it limits them).
func (p *Provider) samlBearerAssertion(ctx context.Context, r fosite.AccessRequester, cl *client) (issuedGrant, error) {
	t, err := mustTenant(ctx)
	if err != nil {
		return issuedGrant{}, err
	}
	invalid := func(hint string) (issuedGrant, error) {
		return issuedGrant{}, fosite.ErrInvalidGrant.WithHint(hint)
	}
	raw := r.GetRequestForm().Get("assertion")
	if raw == "" {
		return issuedGrant{}, fosite.ErrInvalidRequest.WithHint("The assertion parameter is required.")
	}
	doc, iss, err := saml.DecodeBearerAssertion(raw)
	if err != nil {
		return invalid(hintOf(err))
	}
	sc, err := p.d.Store.GetClientByClientID(ctx, t.id, cl.id)
	if err != nil {
		return issuedGrant{}, errors.Join(errStorage, err)
	}
	var issuer *samlIssuer
	for _, si := range append(samlIssuers(sc.Settings), samlIssuers(t.settings)...) {
		if si.Issuer == iss {
			issuer = &si
			break
		}
	}
	if issuer == nil {
		return invalid("The assertion's issuer is not trusted.")
	}
	cert, err := saml.ParseCertificate(issuer.Certificate)
	if err != nil {
		p.d.Log.WarnContext(ctx, "saml2_bearer_issuers certificate unreadable", "issuer", issuer.Issuer, "err", err)
		return invalid("The assertion's issuer is not trusted.")
	}
	tokenURL := t.issuer + PathToken
	a, err := saml.VerifyBearerAssertion(doc, saml.BearerPolicy{
		Issuer: issuer.Issuer, Certificates: []*x509.Certificate{cert},
		Audiences: []string{tokenURL, t.issuer}, Recipient: tokenURL,
		Now: time.Now(), ClockSkew: assertionLeeway, MaxLifetime: maxAssertionLifetime,
	})
	if err != nil {
		return invalid(hintOf(err))
	}
	sum := sha256.Sum256([]byte("saml2-bearer\x00" + a.Issuer + "\x00" + a.ID))
	if err := p.storage.SetClientAssertionJWT(ctx, hex.EncodeToString(sum[:]), a.NotOnOrAfter.Add(assertionLeeway)); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return invalid("The assertion was already used.")
		}
		return issuedGrant{}, err
	}
	var u store.User
	switch issuer.Subject {
	case "id":
		u, err = p.d.Store.GetUser(ctx, t.id, a.Subject)
	default:
		byName, ok := p.d.Store.(userByName)
		if !ok {
			return issuedGrant{}, errors.New("the store cannot find users by username")
		}
		u, err = byName.GetUserByUsername(ctx, t.id, a.Subject)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && !u.Enabled):
		return invalid("The assertion's subject is not a user of this server.")
	case err != nil:
		return issuedGrant{}, errors.Join(errStorage, err)
	}
	return assertionGrant(r, cl, issuer.Scopes, issuedGrant{subject: u.ID, username: u.Username})
}

// hintOf is the client-facing text of a saml.ErrBearerAssertion.
func hintOf(err error) string {
	if s := err.Error(); errors.Is(err, saml.ErrBearerAssertion) && s != "" {
		return strings.ToUpper(s[:1]) + s[1:] + "."
	}
	return "The assertion is not valid."
}
