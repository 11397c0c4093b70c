package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
)

// Limits of inbound messages.
const (
	// maxEncodedMessage bounds a SAMLRequest/SAMLResponse parameter.
	maxEncodedMessage = 128 << 10
	// maxMessage bounds a decoded (inflated) message.
	maxMessage = 256 << 10
	// maxRelayState is SAML bindings section 3.4.3's 80 bytes, with room
	// for SPs that send more.
	maxRelayState = 1024
)

// Errors of inbound message checks.
var (
	errTooLarge  = errors.New("message too large")
	errDTD       = errors.New("message carries a document type declaration")
	errSignature = errors.New("signature missing or not valid")
)

// message is an inbound protocol message as the binding carried it.
type message struct {
	xml        []byte
	relayState string
	redirect   bool
	// for the HTTP-Redirect binding's detached signature
	signedPart string // "SAMLRequest=…&RelayState=…&SigAlg=…" as sent
	sigAlg     string
	signature  []byte
}

// decodeMessage reads param ("SAMLRequest" or "SAMLResponse") from a
// Redirect-binding query (rawQuery) or a POST-binding form.
func decodeMessage(param, rawQuery string, form url.Values, post bool) (*message, error) {
	m := &message{}
	if post {
		v := form.Get(param)
		if v == "" {
			return nil, fmt.Errorf("no %s", param)
		}
		if len(v) > maxEncodedMessage {
			return nil, errTooLarge
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", param, err)
		}
		m.xml, m.relayState = b, form.Get("RelayState")
	} else {
		if len(rawQuery) > maxEncodedMessage+4*maxRelayState {
			return nil, errTooLarge
		}
		vals, raws, err := redirectParams(rawQuery, param)
		if err != nil {
			return nil, err
		}
		v := vals[param]
		if v == "" {
			return nil, fmt.Errorf("no %s", param)
		}
		z, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", param, err)
		}
		b, err := inflate(z)
		if err != nil {
			return nil, err
		}
		m.xml, m.relayState, m.redirect = b, vals["RelayState"], true
		if sig := vals["Signature"]; sig != "" {
			m.sigAlg = vals["SigAlg"]
			if m.signature, err = base64.StdEncoding.DecodeString(sig); err != nil {
				return nil, fmt.Errorf("decoding Signature: %w", err)
			}
			// SAML bindings section 3.4.4.1: the signed octets are the
			// parameters exactly as they appear in the query, in the
			// order param, RelayState, SigAlg.
			parts := []string{raws[param]}
			if r, ok := raws["RelayState"]; ok {
				parts = append(parts, r)
			}
			m.signedPart = strings.Join(append(parts, raws["SigAlg"]), "&")
		}
	}
	if len(m.relayState) > maxRelayState {
		return nil, errors.New("RelayState too long")
	}
	if err := checkXML(m.xml); err != nil {
		return nil, err
	}
	return m, nil
}

// inflate undoes the Redirect binding's DEFLATE, refusing output beyond
// maxMessage (a decompression bomb).
func inflate(z []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(z))
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(io.LimitReader(r, maxMessage+1))
	if err != nil {
		return nil, fmt.Errorf("inflating message: %w", err)
	}
	if len(b) > maxMessage {
		return nil, errTooLarge
	}
	return b, nil
}

// redirectParams reads the Redirect binding's parameters from a raw
// query: their decoded values and the raw "key=value" text each came from,
// so the signature is checked over exactly the text the values are read
// from. A parameter given twice (in any encoding of its name) is refused,
// or a signature over one copy could vouch for the other.
func redirectParams(rawQuery, param string) (vals, raws map[string]string, err error) {
	vals, raws = map[string]string{}, map[string]string{}
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing query: %w", err)
		}
		switch key {
		case param, "RelayState", "SigAlg", "Signature":
		default:
			continue
		}
		if _, dup := raws[key]; dup {
			return nil, nil, fmt.Errorf("parameter %s given twice", key)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing query: %w", err)
		}
		vals[key], raws[key] = val, part
	}
	return vals, raws, nil
}

// checkXML refuses oversized documents and documents with a DTD (no
// entity can be declared, so none expanded), and runs the round-trip
// validator, which refuses documents encoding/xml would not read back the
// same (the namespace and comment tricks behind signature wrapping).
func checkXML(b []byte) error {
	if len(b) > maxMessage {
		return errTooLarge
	}
	if bytes.Contains(b, []byte("<!DOCTYPE")) || bytes.Contains(b, []byte("<!ENTITY")) || bytes.Contains(b, []byte("<!doctype")) {
		return errDTD
	}
	if err := xrv.Validate(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("unsafe XML: %w", err)
	}
	return nil
}

// xmlUnmarshal decodes b strictly: no entity expansion beyond XML's own
// five, no non-UTF-8 charsets.
func xmlUnmarshal(b []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.Entity = nil
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("parsing XML: %w", err)
	}
	return nil
}

// verifyRedirect checks the Redirect binding's detached signature with one
// of certs. Only RSA with SHA-256 or SHA-512 is accepted.
func verifyRedirect(m *message, certs []*x509.Certificate) error {
	var h crypto.Hash
	switch m.sigAlg {
	case dsig.RSASHA256SignatureMethod:
		h = crypto.SHA256
	case dsig.RSASHA512SignatureMethod:
		h = crypto.SHA512
	default:
		return fmt.Errorf("%w: SigAlg %q not accepted", errSignature, m.sigAlg)
	}
	var digest []byte
	if h == crypto.SHA256 {
		d := sha256.Sum256([]byte(m.signedPart))
		digest = d[:]
	} else {
		d := sha512.Sum512([]byte(m.signedPart))
		digest = d[:]
	}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, h, digest, m.signature) == nil {
			return nil
		}
	}
	return errSignature
}

// verifiedRoot parses doc and, when it must be (or is) signed, verifies
// its enveloped signature with certs and returns the element the signature
// library verified; the caller decodes that element, never the raw bytes,
// so content outside the signed element (signature wrapping) is never
// read. signed reports whether a signature was verified.
func verifiedRoot(b []byte, certs []*x509.Certificate, required bool) (root []byte, signed bool, err error) {
	if !bytes.Contains(b, []byte("Signature")) {
		// No element of any namespace is named Signature: nothing to
		// verify, so no need to build the tree to look for one.
		if required {
			return nil, false, errSignature
		}
		return b, false, nil
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, false, fmt.Errorf("parsing XML: %w", err)
	}
	el := doc.Root()
	if el == nil {
		return nil, false, errors.New("empty document")
	}
	hasSig := false
	for _, c := range el.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsig.Namespace {
			hasSig = true
		}
	}
	if !hasSig {
		if required {
			return nil, false, errSignature
		}
		return b, false, nil
	}
	if len(certs) == 0 {
		return nil, false, fmt.Errorf("%w: no certificate to verify with", errSignature)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	vc.IdAttribute = "ID"
	verified, err := vc.Validate(el)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errSignature, err)
	}
	out := etree.NewDocument()
	out.SetRoot(verified)
	vb, err := out.WriteToBytes()
	if err != nil {
		return nil, false, fmt.Errorf("encoding verified element: %w", err)
	}
	return vb, true, nil
}
