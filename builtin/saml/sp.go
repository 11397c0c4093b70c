package saml

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	csaml "github.com/crewjam/saml"

	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/store"
)

// SettingsKey is the key of store.Client.Settings that holds an SP's
// configuration.
const SettingsKey = "saml"

// NameID formats (SAML core section 8.3).
const (
	NameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDTransient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	NameIDEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// Assertion encryption algorithms an SP may choose (XML Encryption 1.1).
const (
	EncAES128GCM = "aes128-gcm"
	EncAES256GCM = "aes256-gcm"
	EncAES128CBC = "aes128-cbc"
	EncAES256CBC = "aes256-cbc"
)

// Limits of SP configuration.
const (
	maxMetadataBytes = 256 << 10
	maxACSURLs       = 16
	spCacheTTL       = 30 * time.Second
	metadataTTL      = 10 * time.Minute
)

// SPConfig is an SP's configuration, the JSON object at
// Settings["saml"]. Fields left empty are taken from the SP's metadata when
// it has some; unknown fields are refused.
type SPConfig struct {
	// EntityID is the SP's entity ID; when set it must equal the client's
	// client_id, which is how requests find their SP.
	EntityID string `json:"entity_id,omitempty"`
	// ACSURLs are the Assertion Consumer Service URLs (HTTP-POST binding)
	// responses may be sent to; the first is the default. Added to the
	// metadata's.
	ACSURLs []string `json:"acs_urls,omitempty"`
	// SLOURL is the SP's single logout endpoint (HTTP-POST binding).
	SLOURL string `json:"slo_url,omitempty"`
	// SLORedirectURL is the SP's single logout endpoint for the
	// HTTP-Redirect binding: LogoutRequests the SP sends by Redirect are
	// answered there, by Redirect, with a detached signature, and the SP
	// is notified there when it has no HTTP-POST endpoint.
	SLORedirectURL string `json:"slo_redirect_url,omitempty"`
	// MetadataXML is the SP's SAML metadata document.
	MetadataXML string `json:"metadata_xml,omitempty"`
	// MetadataURL is where the SP's metadata is fetched from (https, or
	// http; never a loopback or private address unless the node allows
	// it). Fetched documents are kept for ten minutes.
	MetadataURL string `json:"metadata_url,omitempty"`
	// SigningCertificate is the certificate (PEM or base64 DER) the SP
	// signs requests with; added to the metadata's signing keys.
	SigningCertificate string `json:"signing_certificate,omitempty"`
	// EncryptionCertificate is the certificate (PEM or base64 DER) to
	// encrypt assertions to; when empty the metadata's encryption key is
	// used, if any.
	EncryptionCertificate string `json:"encryption_certificate,omitempty"`
	// EncryptAssertions, when false, sends assertions in clear even when
	// an encryption certificate is known. Default true.
	EncryptAssertions *bool `json:"encrypt_assertions,omitempty"`
	// EncryptionMethod is the block cipher of encrypted assertions:
	// aes128-gcm (default), aes256-gcm, aes128-cbc or aes256-cbc. The key
	// is transported with RSA-OAEP (SHA-256 digest).
	EncryptionMethod string `json:"encryption_method,omitempty"`
	// SignResponse signs the Response element. Default true.
	SignResponse *bool `json:"sign_response,omitempty"`
	// WantAssertionsSigned signs the Assertion element. Default: the
	// metadata's WantAssertionsSigned, else false.
	WantAssertionsSigned *bool `json:"want_assertions_signed,omitempty"`
	// RequireSignedRequests refuses AuthnRequests and LogoutRequests that
	// are not signed by the SP. Default: the metadata's
	// AuthnRequestsSigned, else false.
	RequireSignedRequests *bool `json:"require_signed_requests,omitempty"`
	// NameIDFormat is the NameID format used when the request names none:
	// persistent (default), transient, emailAddress or unspecified (the
	// username), as a short name or a URN.
	NameIDFormat string `json:"name_id_format,omitempty"`
	// Attributes maps SAML attribute names to claims of the user (sub,
	// preferred_username, email, email_verified, name, given_name,
	// family_name, phone_number, groups and roles (names, from the
	// store), or any key of the user's attributes).
	// Empty means email, name, given_name and family_name under their own
	// names.
	Attributes map[string]string `json:"attributes,omitempty"`
	// AllowIDPInitiated lets /saml2/idp-init send unsolicited responses to
	// this SP. Default true.
	AllowIDPInitiated *bool `json:"allow_idp_initiated,omitempty"`
}

// sp is a loaded, validated SP.
type sp struct {
	clientID         string
	entityID         string
	name             string
	acs              []csaml.IndexedEndpoint // HTTP-POST endpoints only
	sloURL           string
	sloRedirect      string // HTTP-Redirect binding endpoint
	signingCerts     []*x509.Certificate
	encCert          *x509.Certificate
	encMethod        string
	signResponse     bool
	signAssertion    bool
	requireSigned    bool
	nameIDFormat     string
	attributes       map[string]string
	allowIDPInitiate bool
}

type spEntry struct {
	sp      *sp
	updated time.Time
	loaded  time.Time
}

type mdEntry struct {
	ed      *csaml.EntityDescriptor
	fetched time.Time
}

// errUnknownSP means no enabled client of the tenant is an SP with that
// entity ID.
var errUnknownSP = errors.New("unknown service provider")

// loadSP finds the SP of entityID in the tenant and validates its
// configuration; parsed configurations are cached for spCacheTTL and while
// the client is unchanged.
func (s *Service) loadSP(ctx context.Context, t tenant, entityID string) (*sp, error) {
	if entityID == "" || len(entityID) > 1024 {
		return nil, errUnknownSP
	}
	ref := t.id + "\x00" + entityID
	now := s.d.Now()
	s.mu.Lock()
	e, ok := s.sps[ref]
	s.mu.Unlock()
	if ok && now.Sub(e.loaded) < spCacheTTL {
		return e.sp, nil
	}
	cl, err := s.d.Store.GetClientByClientID(ctx, t.id, entityID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errUnknownSP
	case err != nil:
		return nil, fmt.Errorf("loading service provider: %w", err)
	case !cl.Enabled || cl.Settings[SettingsKey] == nil:
		return nil, errUnknownSP
	}
	if ok && cl.UpdatedAt.Equal(e.updated) {
		s.mu.Lock()
		s.sps[ref] = &spEntry{sp: e.sp, updated: e.updated, loaded: now}
		s.mu.Unlock()
		return e.sp, nil
	}
	p, err := s.parseSP(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("service provider %q is misconfigured: %w", entityID, err)
	}
	s.mu.Lock()
	s.sps[ref] = &spEntry{sp: p, updated: cl.UpdatedAt, loaded: now}
	s.mu.Unlock()
	return p, nil
}

// DecodeSPConfig decodes and checks Settings["saml"] without fetching
// metadata: the checks an admin API can make on write.
func DecodeSPConfig(clientID string, raw any) (SPConfig, error) {
	var cfg SPConfig
	b, err := json.Marshal(raw)
	if err != nil {
		return cfg, fmt.Errorf("encoding settings.saml: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("decoding settings.saml: %w", err)
	}
	if cfg.EntityID != "" && cfg.EntityID != clientID {
		return cfg, errors.New("settings.saml.entity_id must equal the client_id")
	}
	if len(cfg.ACSURLs) > maxACSURLs {
		return cfg, fmt.Errorf("settings.saml.acs_urls has more than %d entries", maxACSURLs)
	}
	for _, u := range cfg.ACSURLs {
		if err := checkEndpoint(u); err != nil {
			return cfg, fmt.Errorf("settings.saml.acs_urls: %w", err)
		}
	}
	if cfg.SLOURL != "" {
		if err := checkEndpoint(cfg.SLOURL); err != nil {
			return cfg, fmt.Errorf("settings.saml.slo_url: %w", err)
		}
	}
	if cfg.SLORedirectURL != "" {
		if err := checkEndpoint(cfg.SLORedirectURL); err != nil {
			return cfg, fmt.Errorf("settings.saml.slo_redirect_url: %w", err)
		}
	}
	if cfg.MetadataXML != "" && cfg.MetadataURL != "" {
		return cfg, errors.New("settings.saml: give metadata_xml or metadata_url, not both")
	}
	if cfg.MetadataURL != "" {
		if err := checkEndpoint(cfg.MetadataURL); err != nil {
			return cfg, fmt.Errorf("settings.saml.metadata_url: %w", err)
		}
	}
	if cfg.MetadataXML == "" && cfg.MetadataURL == "" && len(cfg.ACSURLs) == 0 {
		return cfg, errors.New("settings.saml needs acs_urls, metadata_xml or metadata_url")
	}
	if _, err := nameIDFormat(cfg.NameIDFormat); err != nil {
		return cfg, fmt.Errorf("settings.saml.name_id_format: %w", err)
	}
	switch cfg.EncryptionMethod {
	case "", EncAES128GCM, EncAES256GCM, EncAES128CBC, EncAES256CBC:
	default:
		return cfg, fmt.Errorf("settings.saml.encryption_method %q is not one of %s, %s, %s, %s", cfg.EncryptionMethod, EncAES128GCM, EncAES256GCM, EncAES128CBC, EncAES256CBC)
	}
	for _, c := range []struct{ field, v string }{{"signing_certificate", cfg.SigningCertificate}, {"encryption_certificate", cfg.EncryptionCertificate}} {
		if c.v == "" {
			continue
		}
		if _, err := parseCert(c.v); err != nil {
			return cfg, fmt.Errorf("settings.saml.%s: %w", c.field, err)
		}
	}
	for k, v := range cfg.Attributes {
		if k == "" || v == "" || len(k) > 256 || len(v) > 128 {
			return cfg, errors.New("settings.saml.attributes: names and claims must be 1 to 256 and 1 to 128 bytes")
		}
	}
	if cfg.MetadataXML != "" {
		if _, err := parseMetadata([]byte(cfg.MetadataXML)); err != nil {
			return cfg, fmt.Errorf("settings.saml.metadata_xml: %w", err)
		}
	}
	return cfg, nil
}

// parseSP builds an sp from a client, fetching its metadata if needed.
func (s *Service) parseSP(ctx context.Context, cl store.Client) (*sp, error) {
	cfg, err := DecodeSPConfig(cl.ClientID, cl.Settings[SettingsKey])
	if err != nil {
		return nil, err
	}
	var ed *csaml.EntityDescriptor
	switch {
	case cfg.MetadataXML != "":
		ed, err = parseMetadata([]byte(cfg.MetadataXML))
	case cfg.MetadataURL != "":
		ed, err = s.fetchMetadata(ctx, cfg.MetadataURL)
	}
	if err != nil {
		return nil, err
	}
	p := &sp{
		clientID: cl.ClientID, entityID: cl.ClientID, name: cl.Name, encMethod: cfg.EncryptionMethod,
		signResponse: cfg.SignResponse == nil || *cfg.SignResponse, attributes: cfg.Attributes,
		allowIDPInitiate: cfg.AllowIDPInitiated == nil || *cfg.AllowIDPInitiated,
	}
	if p.encMethod == "" {
		p.encMethod = EncAES128GCM
	}
	p.nameIDFormat, _ = nameIDFormat(cfg.NameIDFormat)
	if p.nameIDFormat == NameIDUnspecified && cfg.NameIDFormat == "" {
		p.nameIDFormat = NameIDPersistent
	}
	for i, u := range cfg.ACSURLs {
		p.acs = append(p.acs, csaml.IndexedEndpoint{Binding: csaml.HTTPPostBinding, Location: u, Index: 1000 + i})
	}
	p.sloURL, p.sloRedirect = cfg.SLOURL, cfg.SLORedirectURL
	var encFromMD *x509.Certificate
	if ed != nil {
		if ed.EntityID != cl.ClientID {
			return nil, fmt.Errorf("the metadata's entityID %q is not the client_id", ed.EntityID)
		}
		for _, d := range ed.SPSSODescriptors {
			for _, a := range d.AssertionConsumerServices {
				if a.Binding == csaml.HTTPPostBinding && checkEndpoint(a.Location) == nil {
					p.acs = append(p.acs, a)
				}
			}
			for _, l := range d.SingleLogoutServices {
				if p.sloURL == "" && l.Binding == csaml.HTTPPostBinding && checkEndpoint(l.Location) == nil {
					p.sloURL = l.Location
				}
				if p.sloRedirect == "" && l.Binding == csaml.HTTPRedirectBinding && checkEndpoint(l.Location) == nil {
					p.sloRedirect = l.Location
				}
			}
			if d.WantAssertionsSigned != nil && *d.WantAssertionsSigned {
				p.signAssertion = true
			}
			if d.AuthnRequestsSigned != nil && *d.AuthnRequestsSigned {
				p.requireSigned = true
			}
			for _, kd := range d.KeyDescriptors {
				for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
					c, err := parseCert(xc.Data)
					if err != nil {
						return nil, fmt.Errorf("metadata key: %w", err)
					}
					if kd.Use == "" || kd.Use == "signing" {
						p.signingCerts = append(p.signingCerts, c)
					}
					if (kd.Use == "" || kd.Use == "encryption") && encFromMD == nil {
						encFromMD = c
					}
				}
			}
		}
	}
	if len(p.acs) == 0 {
		return nil, errors.New("no HTTP-POST assertion consumer service")
	}
	if cfg.WantAssertionsSigned != nil {
		p.signAssertion = *cfg.WantAssertionsSigned
	}
	if cfg.RequireSignedRequests != nil {
		p.requireSigned = *cfg.RequireSignedRequests
	}
	if !p.signResponse && !p.signAssertion {
		// Something must be signed, or anyone could mint responses.
		p.signAssertion = true
	}
	if cfg.SigningCertificate != "" {
		c, _ := parseCert(cfg.SigningCertificate)
		p.signingCerts = append(p.signingCerts, c)
	}
	// An SP that must sign but has no known signing certificate has every
	// request refused (verification has nothing to verify with).
	if cfg.EncryptAssertions == nil || *cfg.EncryptAssertions {
		p.encCert = encFromMD
		if cfg.EncryptionCertificate != "" {
			p.encCert, _ = parseCert(cfg.EncryptionCertificate)
		}
		if p.encCert != nil {
			if _, ok := p.encCert.PublicKey.(*rsa.PublicKey); !ok {
				return nil, errors.New("the encryption certificate's key is not RSA")
			}
		}
	}
	return p, nil
}

// acsFor picks the ACS a request asked for: by URL (exact match), by
// index, or the default one.
func (p *sp) acsFor(acsURL, index string) (string, bool) {
	switch {
	case acsURL != "":
		for _, a := range p.acs {
			if a.Location == acsURL {
				return a.Location, true
			}
		}
		return "", false
	case index != "":
		for _, a := range p.acs {
			if strconv.Itoa(a.Index) == index {
				return a.Location, true
			}
		}
		return "", false
	}
	for _, a := range p.acs {
		if a.IsDefault != nil && *a.IsDefault {
			return a.Location, true
		}
	}
	return p.acs[0].Location, true
}

// nameIDFormat turns a short name or URN into the URN.
func nameIDFormat(v string) (string, error) {
	switch v {
	case "", "unspecified", NameIDUnspecified:
		return NameIDUnspecified, nil
	case "persistent", NameIDPersistent:
		return NameIDPersistent, nil
	case "transient", NameIDTransient:
		return NameIDTransient, nil
	case "emailAddress", "email", NameIDEmail:
		return NameIDEmail, nil
	}
	return "", fmt.Errorf("unsupported NameID format %q", v)
}

// checkEndpoint accepts absolute http(s) URLs without user info or
// fragment.
func checkEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || len(v) > 2048 {
		return fmt.Errorf("%q is not an absolute http(s) URL", v)
	}
	return nil
}

// parseCert reads a certificate given as PEM or as base64 DER (the form
// of metadata's X509Certificate).
func parseCert(v string) (*x509.Certificate, error) {
	v = strings.TrimSpace(v)
	var der []byte
	if strings.HasPrefix(v, "-----BEGIN") {
		b, _ := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		der = b.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return nil, errors.New("not base64")
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return c, nil
}

// parseMetadata reads an SP's metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one.
func parseMetadata(b []byte) (*csaml.EntityDescriptor, error) {
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("metadata larger than %d bytes", maxMetadataBytes)
	}
	if err := checkXML(b); err != nil {
		return nil, err
	}
	var ed csaml.EntityDescriptor
	if err := xmlUnmarshal(b, &ed); err == nil && ed.EntityID != "" {
		return &ed, nil
	}
	var eds csaml.EntitiesDescriptor
	if err := xmlUnmarshal(b, &eds); err != nil {
		return nil, fmt.Errorf("parsing metadata: %w", err)
	}
	if len(eds.EntityDescriptors) != 1 || eds.EntityDescriptors[0].EntityID == "" {
		return nil, errors.New("metadata must describe exactly one entity")
	}
	return &eds.EntityDescriptors[0], nil
}

// fetchMetadata gets metadata from u through the SSRF-guarded client,
// keeping it for metadataTTL.
func (s *Service) fetchMetadata(ctx context.Context, u string) (*csaml.EntityDescriptor, error) {
	now := s.d.Now()
	s.mu.Lock()
	e, ok := s.mds[u]
	s.mu.Unlock()
	if ok && now.Sub(e.fetched) < metadataTTL {
		return e.ed, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := s.d.MetadataClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching metadata: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	ed, err := parseMetadata(b)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.mds[u] = mdEntry{ed: ed, fetched: now}
	s.mu.Unlock()
	return ed, nil
}

// guardedClient is the metadata fetch client: the shared SSRF-guarded
// transport, whose connections may only reach public unicast addresses (the
// check runs on the resolved address at connect time, so DNS rebinding and
// redirects to internal hosts are refused too), no proxy, a 5 s bound on
// connecting, the TLS handshake and the response headers, headers capped
// at 16 KiB, at most three redirects and 10 s in all.
func guardedClient() *http.Client {
	tr := safehttp.Transport(false, 5*time.Second)
	tr.MaxResponseHeaderBytes = 16 << 10
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return nil
	}}
}
