package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
)

// clientCertListener serves connections whose handshake accepted any
// client certificate (Config.SelfSignedClientCerts) and verifies, once per
// connection, whether the certificate chains to the client CAs: handlers
// read the result from the connection state's VerifiedChains exactly as
// when the handshake itself verified (tls.VerifyClientCertIfGiven), so a
// self-signed certificate never passes for a CA-issued one.
type clientCertListener struct {
	net.Listener
	// roots are the client CAs; nil verifies no certificate.
	roots *x509.CertPool
}

// Accept wraps the next connection.
func (l *clientCertListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, nil
	}
	return &clientCertConn{Conn: tc, roots: l.roots}, nil
}

// clientCertConn is a TLS connection whose ConnectionState carries the
// chains of its client certificate verified against roots.
type clientCertConn struct {
	*tls.Conn
	roots  *x509.CertPool
	once   sync.Once
	chains [][]*x509.Certificate
}

// ConnectionState returns the connection's state, with VerifiedChains set
// when the client's certificate chains to the client CAs for client
// authentication at the time of the handshake's completion.
func (c *clientCertConn) ConnectionState() tls.ConnectionState {
	st := c.Conn.ConnectionState()
	if !st.HandshakeComplete || len(st.PeerCertificates) == 0 || c.roots == nil {
		return st
	}
	c.once.Do(func() {
		c.chains = verifyClientChain(st.PeerCertificates, c.roots)
	})
	st.VerifiedChains = c.chains
	return st
}

// verifyClientChain verifies certs (leaf first, then intermediates) as the
// TLS stack does for tls.VerifyClientCertIfGiven; it returns nil when the
// leaf does not chain to roots.
func verifyClientChain(certs []*x509.Certificate, roots *x509.CertPool) [][]*x509.Certificate {
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, cert := range certs[1:] {
		opts.Intermediates.AddCert(cert)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return nil
	}
	return chains
}
