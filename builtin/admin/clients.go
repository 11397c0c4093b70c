package admin

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/kernel/config"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// minClientSecretLen is the shortest secret an operator may choose. Secrets
// Latch generates are 256-bit random values; chosen ones must carry enough
// entropy that a fast hash protects them (see secret.HashClientSecret).
const minClientSecretLen = config.MinClientSecretLength

// Token endpoint authentication methods (OpenID Connect Core section 9).
var authMethods = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth", "none"}

type clientJSON struct {
	ID                      string         `json:"id"`
	ClientID                string         `json:"client_id"`
	ClientSecret            string         `json:"client_secret,omitempty"`
	Name                    string         `json:"name,omitempty"`
	Public                  bool           `json:"public"`
	FirstParty              bool           `json:"first_party"`
	RedirectURIs            []string       `json:"redirect_uris"`
	GrantTypes              []string       `json:"grant_types"`
	ResponseTypes           []string       `json:"response_types"`
	Scopes                  []string       `json:"scopes"`
	Audience                []string       `json:"audience"`
	TokenEndpointAuthMethod string         `json:"token_endpoint_auth_method"`
	Settings                map[string]any `json:"settings,omitempty"`
	Enabled                 bool           `json:"enabled"`
	CreatedAt               time.Time      `json:"created_at"`
	UpdatedAt               time.Time      `json:"updated_at"`
}

func toClientJSON(c store.Client) clientJSON {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientJSON{
		ID: c.ID, ClientID: c.ClientID, Name: c.Name, Public: c.Public, FirstParty: c.FirstParty,
		RedirectURIs: nz(c.RedirectURIs), GrantTypes: nz(c.GrantTypes), ResponseTypes: nz(c.ResponseTypes),
		Scopes: nz(c.Scopes), Audience: nz(c.Audience), TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		Settings: c.Settings, Enabled: c.Enabled, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

type clientInput struct {
	ClientID                *string         `json:"client_id"`
	ClientSecret            *string         `json:"client_secret"`
	Name                    *string         `json:"name"`
	Public                  *bool           `json:"public"`
	FirstParty              *bool           `json:"first_party"`
	RedirectURIs            *[]string       `json:"redirect_uris"`
	GrantTypes              *[]string       `json:"grant_types"`
	ResponseTypes           *[]string       `json:"response_types"`
	Scopes                  *[]string       `json:"scopes"`
	Audience                *[]string       `json:"audience"`
	TokenEndpointAuthMethod *string         `json:"token_endpoint_auth_method"`
	Settings                *map[string]any `json:"settings"`
	Enabled                 *bool           `json:"enabled"`
}

// apply validates in onto cl and settles the token endpoint auth method.
func (in clientInput) apply(cl *store.Client) error {
	if in.Name != nil {
		if err := checkText("name", *in.Name, maxNameLen); err != nil {
			return err
		}
		cl.Name = *in.Name
	}
	if in.Public != nil {
		cl.Public = *in.Public
	}
	if in.FirstParty != nil {
		cl.FirstParty = *in.FirstParty
	}
	if in.RedirectURIs != nil {
		if err := checkList("redirect_uris", *in.RedirectURIs, checkRedirectURI); err != nil {
			return err
		}
		cl.RedirectURIs = *in.RedirectURIs
	}
	for _, f := range []struct {
		name string
		in   *[]string
		out  *[]string
	}{
		{"grant_types", in.GrantTypes, &cl.GrantTypes},
		{"response_types", in.ResponseTypes, &cl.ResponseTypes},
		{"scopes", in.Scopes, &cl.Scopes},
		{"audience", in.Audience, &cl.Audience},
	} {
		if f.in == nil {
			continue
		}
		if err := checkList(f.name, *f.in, checkName); err != nil {
			return err
		}
		*f.out = *f.in
	}
	if in.TokenEndpointAuthMethod != nil {
		if !slices.Contains(authMethods, *in.TokenEndpointAuthMethod) {
			return invalid("token_endpoint_auth_method", "must be one of %v", authMethods)
		}
		cl.TokenEndpointAuthMethod = *in.TokenEndpointAuthMethod
	}
	if in.Settings != nil {
		if err := checkAttributes("settings", *in.Settings); err != nil {
			return err
		}
		cl.Settings = *in.Settings
	}
	if in.Enabled != nil {
		cl.Enabled = *in.Enabled
	}
	switch {
	case cl.Public && cl.TokenEndpointAuthMethod == "":
		cl.TokenEndpointAuthMethod = "none"
	case !cl.Public && cl.TokenEndpointAuthMethod == "":
		cl.TokenEndpointAuthMethod = "client_secret_basic"
	case cl.Public && cl.TokenEndpointAuthMethod != "none":
		return invalid("token_endpoint_auth_method", "must be none for a public client")
	case !cl.Public && cl.TokenEndpointAuthMethod == "none":
		return invalid("token_endpoint_auth_method", "none is only for public clients")
	}
	return nil
}

// checkRedirectURI enforces RFC 6749 section 3.1.2 (absolute, no fragment)
// and the OAuth 2.0 Security BCP (RFC 9700 section 2.1): plain http only for
// loopback hosts. Private-use schemes for native apps (RFC 8252 section 7.1)
// are allowed.
func checkRedirectURI(field, v string) error {
	if len(v) > maxURILen {
		return invalid(field, "must be at most %d bytes", maxURILen)
	}
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() {
		return invalid(field, "must be an absolute URI")
	}
	if u.Fragment != "" || u.RawFragment != "" || len(v) > 0 && v[len(v)-1] == '#' {
		return invalid(field, "must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return invalid(field, "must name a host")
		}
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return invalid(field, "may use http only with a loopback host; use https")
		}
	case "javascript", "data", "file", "vbscript":
		return invalid(field, "must not use the %s scheme", u.Scheme)
	}
	return nil
}

func (a *API) createClient(c *fiber.Ctx) error {
	var in clientInput
	if err := decode(c, &in); err != nil {
		return err
	}
	t := tenantOf(c)
	cl := store.Client{TenantID: t.ID, Enabled: true}
	if err := in.apply(&cl); err != nil {
		return err
	}
	if in.ClientID != nil {
		if err := checkName("client_id", *in.ClientID); err != nil {
			return err
		}
		cl.ClientID = *in.ClientID
	} else {
		id, err := secret.RandomToken(16)
		if err != nil {
			return fault.New(fault.CodeInternal, "internal error").WithCause(err)
		}
		cl.ClientID = id
	}
	if err := checkClientSettings(cl); err != nil {
		return err
	}
	if err := a.checkFlowReference(c.UserContext(), cl); err != nil {
		return err
	}
	plain, err := a.newClientSecret(cl, in.ClientSecret)
	if err != nil {
		return err
	}
	if plain != "" {
		cl.SecretHash = secret.HashClientSecret(plain)
	}
	created, err := a.d.Store.CreateClient(c.UserContext(), cl)
	if err != nil {
		if fault.CodeOf(storeError("client", err)) == fault.CodeConflict {
			return fault.New(fault.CodeConflict, fmt.Sprintf("client_id %q is taken", cl.ClientID)).WithField("client_id")
		}
		return storeError("client", err)
	}
	cl = created
	if err := a.keepClientSecret(c, cl, plain); err != nil {
		return err
	}
	a.audit(c, t.ID, event.ClientCreate, "client:"+cl.ClientID, store.OutcomeSuccess, nil)
	out := toClientJSON(cl)
	out.ClientSecret = plain
	c.Location(c.Path() + "/" + cl.ID)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(out)
}

// newClientSecret returns the secret to give a confidential client: the
// caller's, when given and strong enough, or a generated one.
func (a *API) newClientSecret(cl store.Client, chosen *string) (string, error) {
	if cl.Public {
		if chosen != nil {
			return "", invalid("client_secret", "a public client has no secret")
		}
		return "", nil
	}
	if chosen != nil {
		if len(*chosen) < minClientSecretLen || len(*chosen) > maxNameLen*2 {
			return "", invalid("client_secret", "must be %d to %d bytes", minClientSecretLen, maxNameLen*2)
		}
		if err := checkText("client_secret", *chosen, maxNameLen*2); err != nil {
			return "", err
		}
		return *chosen, nil
	}
	s, err := secret.GenerateClientSecret()
	if err != nil {
		return "", fault.New(fault.CodeInternal, "internal error").WithCause(err)
	}
	return s, nil
}

func (a *API) getClient(c *fiber.Ctx) error {
	cl, err := a.d.Store.GetClient(c.UserContext(), tenantOf(c).ID, c.Params("id"))
	if err != nil {
		return storeError("client", err)
	}
	return c.JSON(toClientJSON(cl))
}

func (a *API) listClients(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	cs, next, err := a.d.Store.ListClients(c.UserContext(), tenantOf(c).ID, p)
	if err != nil {
		return storeError("client", err)
	}
	out := make([]clientJSON, len(cs))
	for i, cl := range cs {
		out[i] = toClientJSON(cl)
	}
	return c.JSON(newList(out, next))
}

func (a *API) updateClient(c *fiber.Ctx) error {
	var in clientInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.ClientID != nil {
		return invalid("client_id", "cannot be changed")
	}
	if in.ClientSecret != nil {
		return invalid("client_secret", "is changed with POST .../secret")
	}
	t := tenantOf(c)
	cl, err := a.d.Store.GetClient(c.UserContext(), t.ID, c.Params("id"))
	if err != nil {
		return storeError("client", err)
	}
	wasPublic := cl.Public
	if err := in.apply(&cl); err != nil {
		return err
	}
	if wasPublic != cl.Public {
		return invalid("public", "cannot be changed; register a new client")
	}
	if err := checkClientSettings(cl); err != nil {
		return err
	}
	if err := a.checkFlowReference(c.UserContext(), cl); err != nil {
		return err
	}
	if cl, err = a.d.Store.UpdateClient(c.UserContext(), cl); err != nil {
		return storeError("client", err)
	}
	a.audit(c, t.ID, event.ClientUpdate, "client:"+cl.ClientID, store.OutcomeSuccess, nil)
	return c.JSON(toClientJSON(cl))
}

func (a *API) deleteClient(c *fiber.Ctx) error {
	t := tenantOf(c)
	cl, err := a.d.Store.GetClient(c.UserContext(), t.ID, c.Params("id"))
	if err != nil {
		return storeError("client", err)
	}
	if "client:"+cl.ClientID == actorOf(c) {
		return fault.New(fault.CodeConflict, "an admin client cannot delete itself")
	}
	if err := a.d.Store.DeleteClient(c.UserContext(), t.ID, cl.ID); err != nil {
		return storeError("client", err)
	}
	a.forgetClientSecret(c, cl)
	a.audit(c, t.ID, event.ClientDelete, "client:"+cl.ClientID, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// secretInput is the optional body of POST /clients/{id}/secret.
type secretInput struct {
	ClientSecret *string `json:"client_secret"`
}

// rotateClientSecret replaces a confidential client's secret with a new
// generated one (or the one in the optional body) and returns it once.
func (a *API) rotateClientSecret(c *fiber.Ctx) error {
	var in secretInput
	if len(c.Body()) > 0 {
		if err := decode(c, &in); err != nil {
			return err
		}
	}
	t := tenantOf(c)
	cl, err := a.d.Store.GetClient(c.UserContext(), t.ID, c.Params("id"))
	if err != nil {
		return storeError("client", err)
	}
	if cl.Public {
		return invalid("client_secret", "a public client has no secret")
	}
	plain, err := a.newClientSecret(cl, in.ClientSecret)
	if err != nil {
		return err
	}
	cl.SecretHash = secret.HashClientSecret(plain)
	if cl, err = a.d.Store.UpdateClient(c.UserContext(), cl); err != nil {
		return storeError("client", err)
	}
	if err := a.keepClientSecret(c, cl, plain); err != nil {
		return err
	}
	a.audit(c, t.ID, event.ClientSecretRotate, "client:"+cl.ClientID, store.OutcomeSuccess, nil)
	out := toClientJSON(cl)
	out.ClientSecret = plain
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// checkClientSettings validates the protocol settings other front doors
// read, so a mistake is refused when it is written, not at the next
// login: settings.saml (a SAML service provider),
// settings.authentication (the application's login flow), and the
// certificates of a self_signed_tls_client_auth client.
func checkClientSettings(cl store.Client) error {
	if cl.TokenEndpointAuthMethod == "self_signed_tls_client_auth" {
		if err := checkSelfSignedCerts(cl.Settings); err != nil {
			return err
		}
	}
	if raw, ok := cl.Settings["saml"]; ok {
		if _, err := saml.DecodeSPConfig(cl.ClientID, raw); err != nil {
			return invalid("settings.saml", "%v", err)
		}
	}
	if raw, ok := cl.Settings[login.ClientSettingAuthentication]; ok {
		if err := login.CheckFlowConfig(raw); err != nil {
			return invalid("settings."+login.ClientSettingAuthentication, "%v", err)
		}
	}
	return nil
}

// checkSelfSignedCerts checks that a self_signed_tls_client_auth client
// registers its certificates (RFC 8705 section 2.2): settings.jwks_uri, or
// settings.jwks with at least one key that carries its certificate in x5c
// or its thumbprint in x5t#S256.
func checkSelfSignedCerts(settings map[string]any) error {
	raw, hasSet := settings["jwks"]
	uri, _ := settings["jwks_uri"].(string)
	switch {
	case hasSet == (uri != ""):
		return invalid("settings.jwks", "self_signed_tls_client_auth needs settings.jwks or settings.jwks_uri, not both")
	case !hasSet:
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return invalid("settings.jwks", "must be a JWK Set")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return invalid("settings.jwks", "must be a JWK Set: %v", err)
	}
	for _, k := range set.Keys {
		if len(k.Certificates) > 0 || len(k.CertificateThumbprintSHA256) > 0 {
			return nil
		}
	}
	return invalid("settings.jwks", "self_signed_tls_client_auth needs a key with its certificate in x5c or x5t#S256")
}
