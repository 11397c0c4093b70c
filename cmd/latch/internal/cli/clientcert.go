package cli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/go-jose/go-jose/v4"
)

// certJWKS reads PEM certificates from files and returns the JWK Set that
// registers them for self_signed_tls_client_auth (RFC 8705 section
// 2.2.2): one key per certificate, with the certificate in x5c, as the
// decoded JSON a client's settings.jwks holds.
func certJWKS(files []string) (map[string]any, error) {
	var set jose.JSONWebKeySet
	for _, f := range files {
		data, err := os.ReadFile(f) //nolint:gosec // G304: the operator names the file.
		if err != nil {
			return nil, fmt.Errorf("reading client certificate: %w", err)
		}
		found := false
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing client certificate %s: %w", f, err)
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: cert.PublicKey, Certificates: []*x509.Certificate{cert}, Use: "sig"})
			found = true
		}
		if !found {
			return nil, fmt.Errorf("reading client certificate %s: no PEM CERTIFICATE in it", f)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no client certificate given")
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding client certificates: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("encoding client certificates: %w", err)
	}
	return out, nil
}
