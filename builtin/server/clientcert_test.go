package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/builtin/server"
)

// clientCert makes a client certificate for cn, signed by parent (with
// parentKey), or self-signed when parent is nil.
func clientCert(t *testing.T, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (tls.Certificate, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: isCA,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert, key
}

// TestSelfSignedClientCerts checks that with SelfSignedClientCerts the
// handshake takes a self-signed client certificate, reported only as
// presented, while one the client CAs issued is still reported verified.
func TestSelfSignedClientCerts(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	_, caCert, caKey := clientCert(t, "client CA", true, nil, nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{
		Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, SelfSignedClientCerts: true,
		ShutdownTimeout: time.Second,
	}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	s.App().Get("/who", func(c *fiber.Ctx) error {
		st := c.Context().TLSConnectionState()
		out := "none"
		if len(st.PeerCertificates) > 0 {
			out = "presented " + st.PeerCertificates[0].Subject.CommonName
		}
		if len(st.VerifiedChains) > 0 {
			out += ", verified " + st.VerifiedChains[0][0].Subject.CommonName
		}
		return c.SendString(out)
	})
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	issued, _, _ := clientCert(t, "issued", false, caCert, caKey)
	selfSigned, _, _ := clientCert(t, "self", false, nil, nil)
	for name, tc := range map[string]struct {
		certs []tls.Certificate
		want  string
	}{
		"NoCertificate": {nil, "none"},
		"CAIssued":      {[]tls.Certificate{issued}, "presented issued, verified issued"},
		"SelfSigned":    {[]tls.Certificate{selfSigned}, "presented self"},
	} {
		t.Run(name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs, MinVersion: tls.VersionTLS12}}}
			resp, err := client.Get("https://" + ln.Addr().String() + "/who")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(body) != tc.want {
				t.Errorf("got %q, want %q", body, tc.want)
			}
		})
	}
}
