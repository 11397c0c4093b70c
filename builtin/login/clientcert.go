package login

import (
	"encoding/pem"
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// clientCertificate returns the client certificate chain the TLS
// handshake verified (config tls.client_ca_file), as query-escaped PEM,
// leaf first (abi.HeaderClientCertificate); "" without one.
func clientCertificate(c *fiber.Ctx) string {
	st := c.Context().TLSConnectionState()
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	var out []byte
	for _, cert := range st.VerifiedChains[0] {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return url.QueryEscape(string(out))
}
