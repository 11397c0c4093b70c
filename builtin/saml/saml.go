// Package saml is Latch's SAML 2.0 identity provider (IdP): per-tenant
// metadata, single sign-on over the HTTP-Redirect and HTTP-POST bindings
// (SP-initiated and IdP-initiated), and single logout. It is built on
// github.com/crewjam/saml's message types, its XML signature and
// encryption helpers, and shares the browser sign-in and SSO session of
// the login package with the OpenID Connect provider.
//
// Service providers (SPs) are clients of the tenant whose client_id is the
// SP's entity ID and whose Settings["saml"] holds their configuration (see
// SPConfig). Every inbound message is bounded in size, refused when it
// carries a DTD, checked for XML round-trip safety, and, when signed or
// when the SP must sign, verified before use; only the element the
// signature library returns as verified is read.
package saml

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of this package.
const (
	// ActionSSO: an assertion was issued to an SP, or a request refused.
	ActionSSO event.Action = "saml.sso"
	// ActionSLO: a single logout was served.
	ActionSLO event.Action = "saml.slo"
)

// Paths, below a tenant's base ("" or "/t/{tenant}").
const (
	PathMetadata = "/saml2/metadata"
	PathSSO      = "/saml2/sso"
	PathResume   = "/saml2/sso/resume"
	PathIDPInit  = "/saml2/idp-init"
	PathSLO      = "/saml2/slo"
	// PathSLONotify is loaded in an iframe of another protocol's
	// signed-out page: it sends one SP the LogoutRequest of a session
	// ended elsewhere (crosslogout.go).
	PathSLONotify = "/saml2/slo/notify"
)

// Defaults of Deps.
const (
	DefaultAssertionLifetime = 5 * time.Minute
	DefaultClockSkew         = 2 * time.Minute
	DefaultRequestMaxAge     = 5 * time.Minute
	DefaultStateLifetime     = 15 * time.Minute
)

// Kinds of store.Token this package keeps.
const (
	kindRequestID = "saml_request_id" // replay cache of inbound message IDs
	kindState     = "saml_sso_state"  // an SSO request waiting for a login
	kindSessionSP = "saml_session_sp" // the SPs a session signed in to
	kindLogout    = "saml_slo_state"  // a logout walking the session's SPs
)

// Store is the part of the kernel store the IdP uses.
type Store interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	GetClientByClientID(ctx context.Context, tenantID, clientID string) (store.Client, error)
	ListUserGroups(ctx context.Context, tenantID, userID string) ([]store.Group, error)
	ListEffectiveUserRoles(ctx context.Context, tenantID, userID string) ([]store.Role, error)
	store.Tokens
}

// KeySource gives the tenant's active signing key (kernel/keys.Manager).
type KeySource interface {
	EnsureAlgorithm(ctx context.Context, tenantID, alg string) error
	Signer(ctx context.Context, tenantID, alg string) (*keys.Signer, error)
}

// Auditor records audit events without blocking (kernel/event.Bus).
type Auditor interface {
	Publish(e event.Event) bool
}

// Deps are what the IdP needs from the node.
type Deps struct {
	// Store holds tenants, users, SPs (clients) and the IdP's state.
	// Required.
	Store Store
	// Keys holds the tenants' RS256 keys the IdP signs with. Required.
	Keys KeySource
	// Login signs browsers in and keeps the shared SSO session. Required.
	Login *login.Service
	// PublicURL is the node's external base URL. Required.
	PublicURL string
	// PseudonymKey (at least 32 bytes; derive it from the master key with
	// secret.DeriveKey(mk, "saml-pseudonym")) keys the persistent NameIDs,
	// so they are stable per user and SP and unlinkable across SPs. Every
	// node of a cluster must use the same one. Required.
	PseudonymKey []byte
	// Log receives failures the user cannot be told about.
	Log *slog.Logger
	// Audit receives saml.sso and saml.slo events.
	Audit Auditor
	// AssertionLifetime bounds the assertions' validity; zero means
	// DefaultAssertionLifetime.
	AssertionLifetime time.Duration
	// ClockSkew is the tolerated difference between the SPs' clocks and
	// this node's; zero means DefaultClockSkew.
	ClockSkew time.Duration
	// RequestMaxAge is how old an inbound request's IssueInstant may be;
	// zero means DefaultRequestMaxAge.
	RequestMaxAge time.Duration
	// MetadataClient fetches SP metadata_url. Nil means a client whose
	// dialer refuses loopback, private, link-local and unspecified
	// addresses (an SSRF guard), with a 10 s timeout.
	MetadataClient *http.Client
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// ClaimMappers, when set, gives a tenant's claim mappers in chain
	// order; the claims of an assertion pass through them from the local
	// to the saml dialect (claimmap.go).
	ClaimMappers func(tenant string) []*extension.Instance
	// SessionEnded, when set, is told of every SSO session a SAML single
	// logout ends, so the other protocols' relying parties of the session
	// are logged out too (the OpenID Connect provider's LogoutSession:
	// back-channel logout tokens); it returns the front-channel logout
	// URLs to load in iframes of the signed-out page.
	SessionEnded func(ctx context.Context, tenantName string, sess *store.Session) []string
}

// Service is the SAML IdP of every tenant. It is safe for concurrent use.
type Service struct {
	d         Deps
	publicURL string

	mu    sync.Mutex
	certs map[string]*idpKey // by tenant id + key id
	sps   map[string]*spEntry
	mds   map[string]mdEntry // fetched metadata by URL
}

// New builds the IdP.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Keys == nil || d.Login == nil {
		return nil, errors.New("creating saml idp: Deps.Store, Deps.Keys and Deps.Login are required")
	}
	if len(d.PseudonymKey) < 32 {
		return nil, errors.New("creating saml idp: Deps.PseudonymKey must be at least 32 bytes")
	}
	u, err := url.Parse(strings.TrimRight(d.PublicURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("creating saml idp: public url %q is not an absolute http(s) URL", d.PublicURL)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Audit == nil {
		d.Audit = discardAudit{}
	}
	if d.AssertionLifetime <= 0 {
		d.AssertionLifetime = DefaultAssertionLifetime
	}
	if d.ClockSkew <= 0 {
		d.ClockSkew = DefaultClockSkew
	}
	if d.RequestMaxAge <= 0 {
		d.RequestMaxAge = DefaultRequestMaxAge
	}
	if d.MetadataClient == nil {
		d.MetadataClient = guardedClient()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{
		d: d, publicURL: u.String(),
		certs: map[string]*idpKey{}, sps: map[string]*spEntry{}, mds: map[string]mdEntry{},
	}, nil
}

// Mount adds the IdP's routes to app, for the default tenant at the root
// and for the others below /t/{tenant}:
//
//	GET       {base}/saml2/metadata        the IdP's metadata
//	GET, POST {base}/saml2/sso             SP-initiated SSO (Redirect, POST)
//	GET       {base}/saml2/sso/resume      continues SSO after a login
//	GET       {base}/saml2/idp-init?sp=…   IdP-initiated SSO
//	GET, POST {base}/saml2/slo             single logout (Redirect, POST)
//	GET       {base}/saml2/slo/notify?k=…  notifies one SP of a logout
func (s *Service) Mount(app *fiber.App) {
	for _, prefix := range []string{"", "/t/:tenant"} {
		app.Get(prefix+PathMetadata, s.handle(s.metadata))
		app.Get(prefix+PathSSO, s.handle(s.sso))
		app.Post(prefix+PathSSO, s.handle(s.sso))
		app.Get(prefix+PathResume, s.handle(s.resume))
		app.Get(prefix+PathIDPInit, s.handle(s.idpInit))
		app.Get(prefix+PathSLO, s.handle(s.slo))
		app.Post(prefix+PathSLO, s.handle(s.slo))
		app.Get(prefix+PathSLONotify, s.handle(s.sloNotify))
	}
}

// tenant is the tenant a request is served for.
type tenant struct {
	id, name, display string
	base              string // "" or "/t/{name}"
	entityID          string
	ssoURL, sloURL    string
}

func (t tenant) page() login.Page { return login.Page{Base: t.base, Brand: t.display} }

type handlerFunc func(c *fiber.Ctx, t tenant) error

// handle resolves the tenant (the default one at the root only) and sets
// the headers every IdP answer carries.
func (s *Service) handle(h handlerFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set("Pragma", "no-cache")
		name := c.Params("tenant")
		switch name {
		case "":
			name = store.DefaultTenantName
		case store.DefaultTenantName:
			return c.Status(http.StatusNotFound).SendString("no such tenant")
		}
		st, err := s.d.Store.GetTenantByName(c.UserContext(), name)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && !st.Enabled):
			return c.Status(http.StatusNotFound).SendString("no such tenant")
		case err != nil:
			s.d.Log.ErrorContext(c.UserContext(), "loading tenant", "err", err)
			return c.Status(http.StatusServiceUnavailable).SendString("temporarily unavailable")
		}
		return h(c, s.tenantFor(st))
	}
}

// tenantFor describes st's IdP.
func (s *Service) tenantFor(st store.Tenant) tenant {
	base := ""
	if st.Name != store.DefaultTenantName {
		base = "/t/" + st.Name
	}
	root := s.publicURL + base
	return tenant{
		id: st.ID, name: st.Name, display: st.DisplayName, base: base,
		entityID: root + PathMetadata, ssoURL: root + PathSSO, sloURL: root + PathSLO,
	}
}

// fail renders the error page; detail must be safe to show.
func (s *Service) fail(c *fiber.Ctx, t tenant, status int, detail string) error {
	return s.d.Login.RenderError(c, status, t.page(), "error.request", detail)
}

// internal logs err and renders a generic error page.
func (s *Service) internal(c *fiber.Ctx, t tenant, err error) error {
	s.d.Log.ErrorContext(c.UserContext(), "serving saml", "tenant", t.name, "err", err)
	return s.d.Login.RenderError(c, http.StatusInternalServerError, t.page(), "error.request", "The request could not be completed.")
}

func (s *Service) publish(c *fiber.Ctx, t tenant, actor string, action event.Action, outcome string, detail map[string]any) {
	s.d.Audit.Publish(event.Event{
		Tenant: t.id, Time: s.d.Now().UTC(), RequestID: server.RequestID(c), Actor: actor,
		Action: action, Outcome: outcome, Detail: detail,
	})
}

type discardAudit struct{}

func (discardAudit) Publish(event.Event) bool { return true }

// --- the IdP's key and certificate ----------------------------------------

// idpKey is a tenant's active RS256 key with its certificate.
type idpKey struct {
	signer crypto.Signer
	cert   *x509.Certificate
}

// certValidity is the fixed validity of the IdP certificates. SAML uses the
// certificate only as a carrier of the public key (trust comes from the
// metadata), so the validity carries no meaning; a fixed one makes the
// certificate a pure function of the key.
var (
	certNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// key returns the tenant's active RS256 key and its self-signed
// certificate. The certificate is derived from the key, not stored: its
// serial is a hash of the public key and its validity fixed, and RSA
// PKCS #1 v1.5 signatures are deterministic, so every node of a cluster
// derives the same bytes and a key rotation (kernel/keys) rotates the
// certificate with it.
func (s *Service) key(ctx context.Context, t tenant) (*idpKey, error) {
	sg, err := s.d.Keys.Signer(ctx, t.id, keys.RS256)
	if errors.Is(err, keys.ErrNoActiveKey) {
		if err := s.d.Keys.EnsureAlgorithm(ctx, t.id, keys.RS256); err != nil {
			return nil, fmt.Errorf("creating the tenant's RS256 key: %w", err)
		}
		sg, err = s.d.Keys.Signer(ctx, t.id, keys.RS256)
	}
	if err != nil {
		return nil, fmt.Errorf("loading the tenant's RS256 key: %w", err)
	}
	ref := t.id + "/" + sg.KeyID()
	s.mu.Lock()
	k := s.certs[ref]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	priv := sg.PrivateKey()
	pub, ok := priv.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("loading the tenant's RS256 key: %w", keys.ErrCorruptKey)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the IdP public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	sum[0] &= 0x7f // a positive serial
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(sum[:16]),
		Subject:               pkix.Name{CommonName: "Latch SAML IdP " + t.name, Organization: []string{"Latch"}},
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("creating the IdP certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the IdP certificate: %w", err)
	}
	k = &idpKey{signer: priv, cert: cert}
	s.mu.Lock()
	s.certs[ref] = k
	s.mu.Unlock()
	return k, nil
}
