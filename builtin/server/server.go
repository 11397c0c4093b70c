// Package server is Latch's HTTP front: one fiber application with request
// ids, a structured access log, Prometheus metrics, JSON errors, health and
// readiness probes, TLS and a graceful drain on shutdown. Protocol front doors
// (the admin API, OIDC, SAML, SCIM, the gateway) mount their routes on it.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the server's part of the configuration.
type Config struct {
	// Listen is the TCP address to serve on ("127.0.0.1:8080").
	Listen string
	// CertFile and KeyFile, when both set, make the server speak TLS.
	CertFile, KeyFile string
	// ClientCAFile, with TLS, is a PEM file of CAs: the handshake asks
	// for a client certificate and accepts one they issued, or none.
	ClientCAFile string
	// SelfSignedClientCerts, with TLS, makes the handshake ask for a
	// client certificate without naming CAs and accept any one (RFC 8705
	// section 2.2, self_signed_tls_client_auth). A certificate that
	// chains to ClientCAFile is still reported in the connection state's
	// VerifiedChains; any other is only in PeerCertificates.
	SelfSignedClientCerts bool
	// BodyLimit caps request bodies in bytes.
	BodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout bound connections.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests on shutdown.
	ShutdownTimeout time.Duration
	// TrustedProxies lists the addresses and CIDR ranges whose
	// X-Forwarded-For header is believed when finding the client's IP.
	TrustedProxies []string
}

// ReadyFunc reports whether the node can serve (its store is reachable).
type ReadyFunc func(ctx context.Context) error

// Server is the HTTP server of one Latch node.
type Server struct {
	cfg     Config
	app     *fiber.App
	log     *slog.Logger
	ready   ReadyFunc
	metrics *metrics
}

// New builds the server. Metrics are registered on reg, which also backs
// /metrics. ready backs /readyz.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, ready ReadyFunc) (*Server, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("registering http metrics: %w", err)
	}
	s := &Server{cfg: cfg, log: log, ready: ready, metrics: m}
	s.app = fiber.New(fiber.Config{
		AppName:               "latch",
		DisableStartupMessage: true,
		// Immutable makes the strings fiber hands out safe to keep past the
		// handler: events and logs are written asynchronously.
		Immutable:               true,
		BodyLimit:               cfg.BodyLimit,
		ReadTimeout:             cfg.ReadTimeout,
		WriteTimeout:            cfg.WriteTimeout,
		IdleTimeout:             cfg.IdleTimeout,
		ErrorHandler:            s.handleError,
		EnableTrustedProxyCheck: len(cfg.TrustedProxies) > 0,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             proxyHeader(cfg.TrustedProxies),
		StrictRouting:           false,
		CaseSensitive:           true,
	})
	s.app.Use(s.recoverPanic, s.requestID, s.observe)
	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	return s, nil
}

func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}

// App returns the fiber application for front doors to mount routes on.
func (s *Server) App() *fiber.App { return s.app }

// Listen opens the configured listener.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.CertFile == "" && s.cfg.KeyFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("loading tls certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	var pool *x509.CertPool
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("reading tls client CA file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			_ = ln.Close()
			return nil, fmt.Errorf("reading tls client CA file %s: no PEM certificate in it", s.cfg.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	if s.cfg.SelfSignedClientCerts {
		// No CA names in the request: clients (Go's among them) would
		// otherwise hold back a certificate none of them issued. The
		// chains are verified after the handshake (clientcert.go).
		cfg.ClientCAs, cfg.ClientAuth = nil, tls.RequestClientCert
		return &clientCertListener{Listener: tls.NewListener(ln, cfg), roots: pool}, nil
	}
	return tls.NewListener(ln, cfg), nil
}

// Serve serves on ln until ctx is done, then stops accepting connections and
// waits up to ShutdownTimeout for in-flight requests to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("serving http: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "draining in-flight requests", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.app.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down http: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("serving http: %w", err)
	}
	return nil
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "message": "store or cache unreachable"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}
