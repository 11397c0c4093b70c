// Package x509 is the authn.x509 extension: sign-in with an X.509 client
// certificate (RFC 5280). When Latch terminates TLS with
// tls.client_ca_file set, the handshake asks the browser for a
// certificate; the chain it verified reaches the step in the request
// header abi.HeaderClientCertificate. This authenticator verifies the
// chain again against its own CAs (ca_files: an instance may trust fewer
// CAs than the listener), for client authentication, at the current time,
// then maps the certificate to a user: its email address (SAN rfc822Name),
// subject common name or SAN URI, matched against the user's email,
// username or an attribute, through the tenant's user stores.
//
// The step needs no input: a browser with a certificate is signed in on
// the step's first request. Without one the step shows a short form that
// says so (and the step's other options). After an earlier step it acts
// as a second factor: the certificate must map to the user already known.
package x509

import (
	"cmp"
	"context"
	"crypto/x509"
	_ "embed" // the configuration schema
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/authn/internal/lookup"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
)

// ID is the module id.
const ID extension.ID = "authn.x509"

// DepUserStores is the dependency of the tenant's user stores.
const DepUserStores = lookup.DepUserStores

// Sources of the user's name in a certificate.
const (
	SourceSANEmail  = "san_email"
	SourceSubjectCN = "subject_cn"
	SourceSANURI    = "san_uri"
)

const (
	retryParam = "x509"
	maxChain   = 8
	maxHeader  = 64 << 10
)

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.x509 module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "X.509 client certificates verified by the TLS handshake, mapped to a user.",
	}
}

// Authenticator is an authn.x509 instance; its exported fields are its
// configuration.
type Authenticator struct {
	CAFiles []string `json:"ca_files"`
	Source  string   `json:"source,omitempty"`
	Match   string   `json:"match,omitempty"`
	AMR     []string `json:"amr,omitempty"`

	roots  *x509.CertPool
	stores lookup.UserStores
	now    func() time.Time
}

// Provision reads the CAs and takes the user stores.
func (a *Authenticator) Provision(_ context.Context, env extension.Env) error {
	a.now = time.Now
	a.Source = cmp.Or(a.Source, SourceSANEmail)
	if a.Match == "" {
		a.Match = "username"
		if a.Source == SourceSANEmail {
			a.Match = "email"
		}
	}
	if len(a.AMR) == 0 {
		a.AMR = []string{"swk"}
	}
	switch a.Source {
	case SourceSANEmail, SourceSubjectCN, SourceSANURI:
	default:
		return fmt.Errorf("source: %q is not san_email, subject_cn or san_uri", a.Source)
	}
	if a.Match != "email" && a.Match != "username" && (!strings.HasPrefix(a.Match, "attribute:") || len(a.Match) == len("attribute:")) {
		return fmt.Errorf("match: %q is not email, username or attribute:<name>", a.Match)
	}
	if len(a.CAFiles) == 0 {
		return errors.New("ca_files: at least one CA file is required")
	}
	a.roots = x509.NewCertPool()
	for i, f := range a.CAFiles {
		b, err := os.ReadFile(f) //nolint:gosec // G304: a path the operator configured.
		if err != nil {
			return fmt.Errorf("ca_files[%d]: %w", i, err)
		}
		if !a.roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("ca_files[%d]: %s holds no PEM certificate", i, f)
		}
	}
	d, _ := env.Dep(DepUserStores)
	s, ok := d.(lookup.UserStores)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want the tenant's user stores", ID, DepUserStores, d)
	}
	a.stores = s
	return nil
}

// Authenticate signs in with the verified client certificate.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	var raw string
	if v := req.Headers[abi.HeaderClientCertificate]; len(v) > 0 {
		raw = v[0]
	}
	if raw == "" {
		return noCertificate(), nil
	}
	leaf, err := a.verify(raw)
	if err != nil {
		return refused(abi.ReasonInvalidCredentials), nil //nolint:nilerr // an untrusted certificate is a refusal
	}
	name := Identity(leaf, a.Source)
	if name == "" {
		return refused(abi.ReasonInvalidCredentials), nil
	}
	find := abi.FindUsersRequest{Tenant: req.Tenant}
	switch a.Match {
	case "email":
		find.Email = name
	case "username":
		find.Username = name
	default:
		find.Attributes = map[string]string{strings.TrimPrefix(a.Match, "attribute:"): name}
	}
	u, found, err := lookup.Find(ctx, a.stores, find)
	switch {
	case errors.Is(err, lookup.ErrNotUnique):
		return refused(abi.ReasonInvalidCredentials), nil
	case err != nil:
		return abi.AuthenticateResponse{}, err
	case !found:
		return refused(abi.ReasonInvalidCredentials), nil
	case !u.Enabled:
		return refused(abi.ReasonDisabled), nil
	case req.KnownSubject != "" && req.KnownSubject != u.ID:
		return refused(abi.ReasonInvalidCredentials), nil
	}
	amr := append([]string(nil), a.AMR...)
	if req.KnownSubject != "" {
		amr = append(amr, "mfa")
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeAuthenticated, Subject: u.ID, AMR: amr,
		Claims: map[string]any{"username": u.Username, "x509_subject": leaf.Subject.String()},
	}, nil
}

// verify decodes the chain of the header and checks it against the
// instance's CAs, for client authentication.
func (a *Authenticator) verify(raw string) (*x509.Certificate, error) {
	certs, err := ParseChain(raw)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: a.roots, Intermediates: inter, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("verifying client certificate: %w", err)
	}
	return certs[0], nil
}

// ParseChain decodes abi.HeaderClientCertificate's value: query-escaped
// PEM certificates, leaf first, at most 8.
func ParseChain(raw string) ([]*x509.Certificate, error) {
	if len(raw) > maxHeader {
		return nil, errors.New("client certificate header too large")
	}
	s, err := url.QueryUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding client certificate header: %w", err)
	}
	rest := []byte(s)
	var certs []*x509.Certificate
	for len(certs) <= maxChain {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("client certificate header holds a %q block", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing client certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || len(certs) > maxChain {
		return nil, errors.New("client certificate header holds no certificate, or too many")
	}
	return certs, nil
}

// Identity returns what of the certificate names the user, by source.
func Identity(c *x509.Certificate, source string) string {
	switch source {
	case SourceSANEmail:
		if len(c.EmailAddresses) > 0 {
			return c.EmailAddresses[0]
		}
		for _, n := range c.Subject.Names {
			// PKCS #9 emailAddress (1.2.840.113549.1.9.1) in the subject.
			if n.Type.String() == "1.2.840.113549.1.9.1" {
				if s, ok := n.Value.(string); ok {
					return s
				}
			}
		}
	case SourceSubjectCN:
		return c.Subject.CommonName
	case SourceSANURI:
		if len(c.URIs) > 0 {
			return c.URIs[0].String()
		}
	}
	return ""
}

// noCertificate is the step's form when the browser sent no certificate
// (or one the listener's CAs did not issue): a retry button, beside the
// step's other options.
func noCertificate() abi.AuthenticateResponse {
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		Challenge: &abi.Challenge{
			Kind:    abi.ChallengeForm,
			Message: "Your browser did not present a client certificate. Install your certificate and try again, or choose another way to sign in.",
			Fields:  []abi.Field{{Name: retryParam, Type: abi.FieldHidden, Value: "retry"}},
		},
	}
}

func refused(reason string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason}
}

// Interface guards.
var (
	_ authn.Authenticator   = (*Authenticator)(nil)
	_ extension.Provisioner = (*Authenticator)(nil)
)
