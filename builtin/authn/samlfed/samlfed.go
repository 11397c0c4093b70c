// Package samlfed is the authn.saml_federation extension: a login step
// that sends the browser to an upstream SAML 2.0 identity provider
// (another Latch, AD FS, a corporate IDP) and signs in the local user its
// assertion resolves to. Latch is the service provider (SP) here, built
// on crewjam/saml's ServiceProvider.
//
// The AuthnRequest goes out over the HTTP-Redirect binding (signed with
// RSA-SHA256 when the instance has a key); the Response comes back to the
// Assertion Consumer Service over HTTP-POST. The round trip is bound to
// the login flow (see package federation): the RelayState names a
// single-use pending record holding the request id, and the response must
// be InResponseTo that id, so a response is accepted once, for the login
// that asked for it; unsolicited (IDP-initiated) responses are refused.
// The library verifies the signatures (of the Response or of every
// Assertion) against the IDP metadata's signing certificates, the issuer,
// destination, recipient, audience and validity window; the XML is
// checked for round-trip safety before it is parsed, and inbound messages
// are size-limited.
//
// Endpoints under the tenant: {base}/login/federated/{instance}/metadata
// (the SP metadata, whose URL is also the default entity id) and
// {base}/login/federated/{instance}/acs.
package samlfed

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	_ "embed" // the configuration schema
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	csaml "github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/federation"
	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "authn.saml_federation"

// Endpoint ops below {base}/login/federated/{instance}/.
const (
	OpMetadata = "metadata"
	OpACS      = "acs"
)

// Limits and timings.
const (
	// MaxResponseBytes caps an inbound SAMLResponse, base64-decoded.
	MaxResponseBytes = 256 << 10
	// metadataTTL is how long fetched IDP metadata is used before it is
	// fetched again; a failed refresh keeps the previous document.
	metadataTTL = 10 * time.Minute
	// metadataRetry is the least time between two failed fetches.
	metadataRetry = 30 * time.Second
)

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.saml_federation module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Sign-in through an upstream SAML 2.0 identity provider (Latch as the SP), with just-in-time provisioning and account linking.",
	}
}

// DefaultAttributes maps local attributes to SAML attribute names (Name or
// FriendlyName); the attributes config overrides it per attribute.
var DefaultAttributes = map[string]string{
	federation.AttrUsername:    "username",
	federation.AttrEmail:       "email",
	federation.AttrDisplayName: "name",
	federation.AttrGivenName:   "given_name",
	federation.AttrFamilyName:  "family_name",
}

// Authenticator is an authn.saml_federation instance; its exported fields
// are its configuration (see config.schema.json).
type Authenticator struct {
	// IDPMetadataXML is the IDP's metadata document; IDPMetadataURL where
	// it is fetched from instead (kept for ten minutes).
	IDPMetadataXML string `json:"idp_metadata_xml,omitempty"`
	IDPMetadataURL string `json:"idp_metadata_url,omitempty"`
	// EntityID is Latch's entity id as SP; default the metadata URL of
	// the instance under the tenant.
	EntityID string `json:"entity_id,omitempty"`
	// KeyFile and CertificateFile hold the SP's RSA key and certificate
	// (PEM): with them AuthnRequests are signed and encrypted assertions
	// accepted. Without them requests go unsigned and assertions must be
	// sent in clear (they are always signed).
	KeyFile         string `json:"key_file,omitempty"`
	CertificateFile string `json:"certificate_file,omitempty"`
	// NameIDFormat asked for: persistent (default), emailAddress,
	// unspecified, or a URN.
	NameIDFormat string `json:"name_id_format,omitempty"`
	// SubjectAttribute, when set, names the attribute whose value is the
	// stable subject instead of the NameID.
	SubjectAttribute string `json:"subject_attribute,omitempty"`
	// Attributes maps local attributes to SAML attribute names, over
	// DefaultAttributes.
	Attributes map[string]string `json:"attributes,omitempty"`
	// TrustEmail treats the IDP's email addresses as verified (SAML has
	// no email_verified); link_by_email needs it.
	TrustEmail bool `json:"trust_email,omitempty"`
	// ForceAuthn asks the IDP to authenticate the user again.
	ForceAuthn bool `json:"force_authn,omitempty"`
	// Label is the text of the button that offers this sign-in.
	Label string `json:"label,omitempty"`
	// JIT is federation.JITCreate, JITLinkOnly (default) or JITOff.
	JIT string `json:"jit,omitempty"`
	// LinkByEmail links an unlinked identity to the one local user with
	// its email address, when trust_email is set.
	LinkByEmail bool `json:"link_by_email,omitempty"`
	// AllowPrivateNetworks lets the instance fetch metadata from loopback
	// or private addresses, over http too (development, tests).
	AllowPrivateNetworks bool `json:"allow_private_networks,omitempty"`

	name     string
	st       federation.Store
	accounts *federation.Accounts
	client   *http.Client
	log      *slog.Logger
	key      crypto.Signer
	cert     *x509.Certificate

	mu        sync.Mutex
	idp       *csaml.EntityDescriptor
	idpAt     time.Time
	idpErr    error
	idpErrAt  time.Time
	nameIDFmt csaml.NameIDFormat
}

// Provision reads the configuration, the key and the dependencies, and
// parses inline IDP metadata.
func (a *Authenticator) Provision(ctx context.Context, env extension.Env) error {
	a.name = env.Name
	a.JIT = cmp.Or(a.JIT, federation.JITLinkOnly)
	a.Label = cmp.Or(a.Label, "Sign in with SAML")
	su, err := federation.NewSetup(env, ID, a.AllowPrivateNetworks)
	if err != nil {
		return err
	}
	a.st, a.accounts, a.client, a.log = su.Store, su.Accounts, su.Client, su.Log
	switch strings.ToLower(a.NameIDFormat) {
	case "", "persistent":
		a.nameIDFmt = csaml.PersistentNameIDFormat
	case "emailaddress", "email":
		a.nameIDFmt = csaml.EmailAddressNameIDFormat
	case "unspecified":
		a.nameIDFmt = csaml.UnspecifiedNameIDFormat
	case "transient":
		a.nameIDFmt = csaml.TransientNameIDFormat
	default:
		a.nameIDFmt = csaml.NameIDFormat(a.NameIDFormat)
	}
	if a.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(a.CertificateFile, a.KeyFile)
		if err != nil {
			return fmt.Errorf("provisioning %s: loading key_file and certificate_file: %w", ID, err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok || pair.Leaf == nil {
			return fmt.Errorf("provisioning %s: key_file holds no usable private key", ID)
		}
		a.key, a.cert = signer, pair.Leaf
	}
	if a.IDPMetadataXML != "" {
		md, err := ParseIDPMetadata([]byte(a.IDPMetadataXML))
		if err != nil {
			return &extension.ConfigError{Fields: []extension.FieldError{{Path: "config.idp_metadata_xml", Message: err.Error()}}}
		}
		a.idp, a.idpAt = md, time.Now()
	}
	return nil
}

// Validate checks that the IDP's metadata is given one way.
func (a *Authenticator) Validate() error {
	var errs []extension.FieldError
	switch {
	case a.IDPMetadataXML == "" && a.IDPMetadataURL == "":
		errs = append(errs, extension.FieldError{Path: "config.idp_metadata_url", Message: "set idp_metadata_xml or idp_metadata_url"})
	case a.IDPMetadataXML != "" && a.IDPMetadataURL != "":
		errs = append(errs, extension.FieldError{Path: "config.idp_metadata_url", Message: "set idp_metadata_xml or idp_metadata_url, not both"})
	case a.IDPMetadataURL != "":
		if err := safehttp.CheckURL(a.IDPMetadataURL, a.AllowPrivateNetworks); err != nil {
			errs = append(errs, extension.FieldError{Path: "config.idp_metadata_url", Message: err.Error()})
		}
	}
	if (a.KeyFile == "") != (a.CertificateFile == "") {
		errs = append(errs, extension.FieldError{Path: "config.certificate_file", Message: "set key_file and certificate_file together"})
	}
	if a.LinkByEmail && !a.TrustEmail {
		errs = append(errs, extension.FieldError{Path: "config.link_by_email", Message: "needs trust_email: SAML does not say whether an email address is verified"})
	}
	if len(errs) > 0 {
		return &extension.ConfigError{Fields: errs}
	}
	return nil
}

// ButtonLabel is the text of the button that offers this sign-in.
func (a *Authenticator) ButtonLabel() string { return a.Label }

// ParseIDPMetadata parses an IDP's metadata document (an EntityDescriptor,
// or an EntitiesDescriptor holding one IDP): round-trip-safe XML, at most
// federation.MaxFetchBytes, with an IDPSSODescriptor that has an
// HTTP-Redirect single sign-on service and a signing certificate.
func ParseIDPMetadata(data []byte) (*csaml.EntityDescriptor, error) {
	if len(data) > federation.MaxFetchBytes {
		return nil, fmt.Errorf("parsing idp metadata: larger than %d bytes", federation.MaxFetchBytes)
	}
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("parsing idp metadata: %w", err)
	}
	md := &csaml.EntityDescriptor{}
	if err := xml.Unmarshal(data, md); err != nil {
		var all csaml.EntitiesDescriptor
		if xml.Unmarshal(data, &all) != nil {
			return nil, fmt.Errorf("parsing idp metadata: %w", err)
		}
		md = nil
		for i := range all.EntityDescriptors {
			if len(all.EntityDescriptors[i].IDPSSODescriptors) > 0 {
				md = &all.EntityDescriptors[i]
				break
			}
		}
		if md == nil {
			return nil, errors.New("parsing idp metadata: no entity with an IDPSSODescriptor")
		}
	}
	if md.EntityID == "" || len(md.IDPSSODescriptors) == 0 {
		return nil, errors.New("parsing idp metadata: no entityID or no IDPSSODescriptor")
	}
	redirect, signing := false, false
	for _, d := range md.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding == csaml.HTTPRedirectBinding && s.Location != "" {
				redirect = true
			}
		}
		for _, k := range d.KeyDescriptors {
			if (k.Use == "" || k.Use == "signing") && len(k.KeyInfo.X509Data.X509Certificates) > 0 {
				signing = true
			}
		}
	}
	if !redirect {
		return nil, errors.New("parsing idp metadata: no SingleSignOnService with the HTTP-Redirect binding")
	}
	if !signing {
		return nil, errors.New("parsing idp metadata: no signing certificate")
	}
	return md, nil
}

// metadata returns the IDP's metadata, fetching it when configured by URL
// and stale.
func (a *Authenticator) metadata(ctx context.Context) (*csaml.EntityDescriptor, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.IDPMetadataURL == "" || (a.idp != nil && time.Since(a.idpAt) < metadataTTL) {
		return a.idp, nil
	}
	if a.idpErr != nil && time.Since(a.idpErrAt) < metadataRetry {
		if a.idp != nil {
			return a.idp, nil
		}
		return nil, a.idpErr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), federation.FetchTimeout)
	defer cancel()
	body, err := safehttp.Get(ctx, a.client, a.IDPMetadataURL, "")
	var md *csaml.EntityDescriptor
	if err == nil {
		md, err = ParseIDPMetadata(body)
	}
	if err != nil {
		a.idpErr, a.idpErrAt = fault.Unavailable.WithMessage("the identity provider's metadata is unavailable").WithCause(err), time.Now()
		if a.idp != nil {
			a.log.WarnContext(ctx, "refreshing idp metadata; keeping the previous document", "err", err)
			return a.idp, nil
		}
		return nil, a.idpErr
	}
	a.idp, a.idpAt, a.idpErr = md, time.Now(), nil
	return md, nil
}

// serviceProvider is the SP for the tenant's base URL.
func (a *Authenticator) serviceProvider(base string, idp *csaml.EntityDescriptor) *csaml.ServiceProvider {
	mdURL, _ := url.Parse(federation.EndpointURL(base, a.name, OpMetadata))
	acsURL, _ := url.Parse(federation.EndpointURL(base, a.name, OpACS))
	sp := &csaml.ServiceProvider{
		EntityID: cmp.Or(a.EntityID, mdURL.String()), MetadataURL: *mdURL, AcsURL: *acsURL,
		IDPMetadata: idp, AuthnNameIDFormat: a.nameIDFmt, HTTPClient: a.client,
	}
	if a.key != nil {
		sp.Key, sp.Certificate, sp.SignatureMethod = a.key, a.cert, dsig.RSASHA256SignatureMethod
	}
	if a.ForceAuthn {
		force := true
		sp.ForceAuthn = &force
	}
	return sp
}

// stepState is what the instance keeps in the login flow between the
// redirect and the return.
type stepState struct {
	Key string `json:"k"`
}

// Authenticate sends the browser to the IDP with an AuthnRequest, or,
// when it is back with a result for this flow, answers authenticated.
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
				if r.FlowID != req.FlowID || r.Instance != a.name || (req.KnownSubject != "" && req.KnownSubject != r.UserID) {
					return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}, nil
				}
				return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: r.UserID, Issuer: r.Issuer, Claims: r.Claims, AMR: r.AMR}, nil
			case !errors.Is(err, store.ErrNotFound):
				return abi.AuthenticateResponse{}, err
			}
		}
	}
	idp, err := a.metadata(ctx)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	base, err := federation.BaseFromCallback(req.CallbackURL)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	sp := a.serviceProvider(base, idp)
	ar, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(csaml.HTTPRedirectBinding), csaml.HTTPRedirectBinding, csaml.HTTPPostBinding)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("making the AuthnRequest: %w", err))
	}
	key, err := federation.NewKey()
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	u, err := ar.Redirect(key, sp)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("encoding the AuthnRequest: %w", err))
	}
	if err := federation.SavePending(ctx, a.st, tenant.ID, key, federation.Pending{
		Instance: a.name, FlowID: req.FlowID, Return: req.CallbackURL, KnownSubject: req.KnownSubject, RequestID: ar.ID,
	}); err != nil {
		return abi.AuthenticateResponse{}, err
	}
	state, _ := json.Marshal(stepState{Key: key})
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge, State: state,
		Challenge: &abi.Challenge{Kind: abi.ChallengeRedirect, URL: u.String()},
	}, nil
}

// ServeFederation serves the SP metadata and the Assertion Consumer
// Service.
func (a *Authenticator) ServeFederation(ctx context.Context, r *federation.Request) (*federation.Response, error) {
	switch {
	case r.Op == OpMetadata && r.Method == http.MethodGet:
		return a.serveMetadata(ctx, r)
	case r.Op == OpACS && r.Method == http.MethodPost:
		return a.acs(ctx, r)
	}
	return nil, federation.Refuse(http.StatusNotFound, "There is nothing here.", fmt.Errorf("op %s %q", r.Method, r.Op))
}

func (a *Authenticator) serveMetadata(ctx context.Context, r *federation.Request) (*federation.Response, error) {
	idp, err := a.metadata(ctx)
	if err != nil {
		idp = &csaml.EntityDescriptor{} // the SP's own metadata does not need the IDP's
	}
	md := a.serviceProvider(r.BaseURL, idp).Metadata()
	for i := range md.SPSSODescriptors {
		// Only the POST binding is served.
		var acs []csaml.IndexedEndpoint
		for _, e := range md.SPSSODescriptors[i].AssertionConsumerServices {
			if e.Binding == csaml.HTTPPostBinding {
				acs = append(acs, e)
			}
		}
		md.SPSSODescriptors[i].AssertionConsumerServices = acs
	}
	body, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding sp metadata: %w", err)
	}
	return &federation.Response{Status: http.StatusOK, ContentType: "application/samlmetadata+xml", Body: append([]byte(xml.Header), body...)}, nil
}

// acs takes the IDP's Response.
func (a *Authenticator) acs(ctx context.Context, r *federation.Request) (*federation.Response, error) {
	tenant, err := a.st.GetTenantByName(ctx, r.Tenant)
	if err != nil {
		return nil, fmt.Errorf("loading tenant %q: %w", r.Tenant, err)
	}
	relay := r.Params.Get("RelayState")
	if relay == "" {
		return nil, federation.Refuse(federation.StatusBad, "Sign-in started at the identity provider is not accepted here. Start at the application.", errors.New("unsolicited response"))
	}
	p, err := federation.TakePending(ctx, a.st, tenant.ID, relay)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, federation.Refuse(federation.StatusBad, federation.MsgExpired, errors.New("unknown, expired or used RelayState"))
	case err != nil:
		return nil, err
	case p.Instance != a.name:
		return nil, federation.Refuse(federation.StatusBad, federation.MsgExpired, fmt.Errorf("RelayState of instance %q", p.Instance))
	}
	raw, err := DecodeResponse(r.Params.Get("SAMLResponse"))
	if err != nil {
		return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, err)
	}
	idp, err := a.metadata(ctx)
	if err != nil {
		return nil, err
	}
	base, err := federation.BaseFromCallback(p.Return)
	if err != nil {
		return nil, err
	}
	sp := a.serviceProvider(base, idp)
	assertion, err := sp.ParseXMLResponse(raw, []string{p.RequestID}, sp.AcsURL)
	if err != nil {
		var ire *csaml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		var bad csaml.ErrBadStatus
		if errors.As(err, &bad) {
			return nil, federation.Refuse(http.StatusUnauthorized, federation.MsgCanceled, fmt.Errorf("idp status %s", bad.Status))
		}
		return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, fmt.Errorf("verifying the saml response: %w", err))
	}
	attrs := Attributes(assertion)
	subject, err := a.subject(assertion, attrs)
	if err != nil {
		return nil, federation.Refuse(federation.StatusBad, federation.MsgUnverified, err)
	}
	upstream := make(map[string]any, len(attrs))
	for k, v := range attrs {
		upstream[k] = v
	}
	id := federation.Map(a.name, idp.EntityID, subject, upstream, a.Attributes, DefaultAttributes)
	if id.Username == "" && assertion.Subject != nil && assertion.Subject.NameID != nil {
		if f := assertion.Subject.NameID.Format; f == string(csaml.EmailAddressNameIDFormat) || f == string(csaml.UnspecifiedNameIDFormat) {
			id.Username = assertion.Subject.NameID.Value
		}
	}
	id.EmailVerified = a.TrustEmail && id.Email != ""
	acc, err := a.accounts.Resolve(ctx, tenant, id, federation.Policy{JIT: a.JIT, LinkByEmail: a.LinkByEmail}, p.KnownSubject)
	if err != nil {
		return nil, err
	}
	if err := federation.SaveResult(ctx, a.st, tenant.ID, relay, federation.Result{
		FlowID: p.FlowID, Instance: a.name, UserID: acc.UserID, Username: acc.Username,
		Issuer: idp.EntityID, Subject: subject, Claims: federation.Claims(id, acc),
		Created: acc.Created, Linked: acc.Linked,
	}); err != nil {
		return nil, err
	}
	return &federation.Response{Redirect: p.Return, Events: federation.AccountEvents(id, acc)}, nil
}

// subject is the stable id of the user: the NameID, or the configured
// attribute. A transient NameID is refused without one.
func (a *Authenticator) subject(as *csaml.Assertion, attrs map[string][]string) (string, error) {
	var s string
	if a.SubjectAttribute != "" {
		if v := attrs[a.SubjectAttribute]; len(v) > 0 {
			s = v[0]
		}
	} else if as.Subject != nil && as.Subject.NameID != nil {
		if as.Subject.NameID.Format == string(csaml.TransientNameIDFormat) {
			return "", errors.New("transient NameID and no subject_attribute")
		}
		s = as.Subject.NameID.Value
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 512 {
		return "", errors.New("no subject, or one over 512 bytes")
	}
	return s, nil
}

// DecodeResponse decodes a posted SAMLResponse (base64, standard or
// without padding, line breaks allowed), refusing it over
// MaxResponseBytes.
func DecodeResponse(v string) ([]byte, error) {
	if v == "" {
		return nil, errors.New("no SAMLResponse")
	}
	if len(v) > base64.StdEncoding.EncodedLen(MaxResponseBytes)+1024 {
		return nil, fmt.Errorf("SAMLResponse over %d bytes", MaxResponseBytes)
	}
	v = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, v)
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("decoding SAMLResponse: %w", err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fmt.Errorf("SAMLResponse over %d bytes", MaxResponseBytes)
	}
	return b, nil
}

// Attributes collects an assertion's attribute values by Name and by
// FriendlyName (at most 64 names, 16 values each).
func Attributes(as *csaml.Assertion) map[string][]string {
	out := map[string][]string{}
	for _, st := range as.AttributeStatements {
		for _, at := range st.Attributes {
			var vals []string
			for _, v := range at.Values {
				if len(vals) < 16 {
					vals = append(vals, v.Value)
				}
			}
			for _, n := range []string{at.Name, at.FriendlyName} {
				if n != "" && len(out) < 64 {
					if _, seen := out[n]; !seen {
						out[n] = vals
					}
				}
			}
		}
	}
	return out
}

var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ extension.Provisioner = (*Authenticator)(nil)
	_ extension.Validator   = (*Authenticator)(nil)
	_ federation.Endpoint   = (*Authenticator)(nil)
)
