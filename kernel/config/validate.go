package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/secret"
)

// FieldError is one problem Validate found, named by the field's YAML path.
type FieldError struct {
	// Field is the YAML path, such as "http.body_limit".
	Field string
	// Message says what is wrong, such as "must be > 0".
	Message string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks c and returns every problem at once (errors.Join of
// *FieldError values), each naming its field by YAML path, or nil. It does
// no I/O. Messages never contain secret values.
func (c Config) Validate() error {
	var v validator

	v.check(c.Listen != "", "listen", "must not be empty")
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			v.add("listen", "must be host:port (like 127.0.0.1:8080 or :8080), got %q", c.Listen)
		} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
			v.add("listen", "port %q is not a number from 0 to 65535", port)
		}
	}
	v.publicURL(c.PublicURL)
	if c.Gateway.RoutesFile != "" {
		if _, _, err := net.SplitHostPort(c.Gateway.Listen); err != nil {
			v.add("gateway.listen", "must be host:port (like 127.0.0.1:8081), got %q", c.Gateway.Listen)
		}
		v.check(c.Gateway.Listen != c.Listen, "gateway.listen", "must differ from listen")
	}
	v.check(c.DataDir != "", "data_dir", "must not be empty")
	v.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("log_format", c.LogFormat, "text", "json")
	if c.MasterKey != "" {
		if _, err := secret.DecodeMasterKey(c.MasterKey.Value()); err != nil {
			v.add("master_key", "must be the base64 of 32 random bytes (generate one with: openssl rand -base64 32)")
		}
	}

	v.oneOf("store.driver", c.Store.Driver, "sqlite", "postgres")
	v.check(c.Store.DSN != "", "store.dsn", "must not be empty (required for the %s driver)", c.Store.Driver)
	v.check(c.Store.MaxOpenConns >= 0, "store.max_open_conns", "must be >= 0")
	v.check(c.Store.ConnMaxLifetime >= 0, "store.conn_max_lifetime", "must be >= 0")
	v.oneOf("cache.driver", c.Cache.Driver, "none", "redis")
	if c.Cache.Driver == "redis" {
		if _, _, err := net.SplitHostPort(c.Cache.Addr); err != nil {
			v.add("cache.addr", "must be host:port (like 127.0.0.1:6379), got %q", c.Cache.Addr)
		}
		v.check(c.Cache.DB >= 0, "cache.db", "must be >= 0")
		v.check(c.Cache.MaxConns >= 0, "cache.max_conns", "must be >= 0")
		v.check(c.Cache.Timeout > 0, "cache.timeout", "must be > 0")
		v.check(c.Cache.CAFile == "" || c.Cache.TLS, "cache.ca_file", "needs cache.tls: true")
	}

	hasCert, hasKey := c.TLS.CertFile != "", c.TLS.KeyFile != ""
	v.check(!hasCert || hasKey, "tls.key_file", "must be set when tls.cert_file is set")
	v.check(!hasKey || hasCert, "tls.cert_file", "must be set when tls.key_file is set")
	v.check(c.TLS.ClientCAFile == "" || hasCert, "tls.client_ca_file", "needs tls.cert_file: client certificates are asked for in the TLS handshake")
	v.check(!c.TLS.SelfSignedClientCerts || hasCert, "tls.self_signed_client_certs", "needs tls.cert_file: client certificates are asked for in the TLS handshake")
	if !hasCert && !hasKey && !c.TLS.Insecure && c.Listen != "" && !isLoopback(c.Listen) {
		v.add("tls.cert_file", "plain HTTP on the non-loopback address %q is refused: set tls.cert_file and tls.key_file, "+
			"or set tls.insecure: true when a proxy in front of Latch terminates TLS", c.Listen)
	}

	v.check(c.HTTP.ReadTimeout > 0, "http.read_timeout", "must be > 0")
	v.check(c.HTTP.WriteTimeout > 0, "http.write_timeout", "must be > 0")
	v.check(c.HTTP.IdleTimeout > 0, "http.idle_timeout", "must be > 0")
	v.check(c.HTTP.ShutdownTimeout > 0, "http.shutdown_timeout", "must be > 0")
	v.check(c.HTTP.BodyLimit > 0, "http.body_limit", "must be > 0")
	for i, k := range c.Bundles.TrustedKeys {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(k, "ed25519:"))
		v.check(strings.HasPrefix(k, "ed25519:") && err == nil && len(raw) == 32,
			fmt.Sprintf("bundles.trusted_keys[%d]", i), "want \"ed25519:\" and the base64 of a 32-byte public key")
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err == nil {
			continue
		}
		v.add(fmt.Sprintf("http.trusted_proxies[%d]", i), "%q is not an IP address or CIDR prefix", p)
	}

	// The same floors as the admin API applies to chosen credentials: a
	// client secret is stored under a fast hash, so it must carry its own
	// entropy; a password follows NIST SP 800-63B's minimum of 8.
	if s := c.Bootstrap.ClientSecret.Value(); s != "" && len(s) < MinClientSecretLength {
		v.add("bootstrap.client_secret", "must be at least %d characters (generate one with: openssl rand -base64 32)", MinClientSecretLength)
	}
	if p := c.Bootstrap.AdminPassword.Value(); p != "" && (len([]rune(p)) < MinPasswordLength || len(p) > password.MaxLength) {
		v.add("bootstrap.admin_password", "must be %d to %d characters", MinPasswordLength, password.MaxLength)
	}

	if err := keys.CheckAlgorithm(c.Keys.Algorithm); err != nil {
		v.add("keys.algorithm", "must be one of %v, got %q", keys.SupportedAlgorithms(), c.Keys.Algorithm)
	}
	v.check(c.Keys.Overlap > 0, "keys.overlap", "must be > 0")

	v.plugins(c.Plugins)

	pw := c.Password
	v.check(pw.Parallelism >= 1, "password.parallelism", "must be >= 1")
	v.check(pw.Iterations >= 1 && pw.Iterations <= password.MaxIterations,
		"password.iterations", "must be between 1 and %d", password.MaxIterations)
	v.check(pw.Memory >= 8*uint32(max(pw.Parallelism, 1)) && pw.Memory <= password.MaxMemory,
		"password.memory", "must be between 8 KiB per lane (%d) and %d KiB", 8*uint32(max(pw.Parallelism, 1)), password.MaxMemory)
	if len(v.errs) == 0 {
		// Backstop should password.Params gain rules the checks above lack.
		if err := pw.Params().Validate(); err != nil {
			v.add("password", "%v", err)
		}
	}
	return errors.Join(v.errs...)
}

// Floors for credentials an operator chooses.
const (
	// MinClientSecretLength is the shortest client secret accepted.
	MinClientSecretLength = 32
	// MinPasswordLength is the shortest password accepted.
	MinPasswordLength = 8
)

type validator struct{ errs []error }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) check(ok bool, field, format string, args ...any) {
	if !ok {
		v.add(field, format, args...)
	}
}

func (v *validator) oneOf(field, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.add(field, "must be one of %v, got %q", allowed, got)
}

// plugins checks the plugins section: each entry's fields, and ids unique.
func (v *validator) plugins(ps []PluginConfig) {
	seen := make(map[string]int, len(ps))
	for i, p := range ps {
		at := func(field string) string { return fmt.Sprintf("plugins[%d].%s", i, field) }
		switch {
		case p.ID == "":
			v.add(at("id"), "must not be empty")
		case !validPluginID(p.ID):
			v.add(at("id"), "%q must be 1 to %d of a-z 0-9 _ - . starting with a letter or digit", p.ID, maxPluginIDLength)
		default:
			if j, dup := seen[p.ID]; dup {
				v.add(at("id"), "%q is already the id of plugins[%d]", p.ID, j)
			} else {
				seen[p.ID] = i
			}
		}
		switch {
		case p.Path == "" && p.Command == "":
			v.add(at("path"), "must not be empty (or set command, for a native plugin)")
		case p.Path != "" && p.Command != "":
			v.add(at("command"), "must not be set beside path: a plugin is a .wasm module or a native binary")
		case p.Command != "":
			v.check(p.Processes >= 1 && p.Processes <= maxPluginProcesses, at("processes"), "must be between 1 and %d", maxPluginProcesses)
			v.check(p.SHA256 == "" || validSHA256(p.SHA256), at("sha256"), "must be 64 hex digits, got %q", p.SHA256)
		case !strings.HasSuffix(p.Path, ".wasm"):
			v.add(at("path"), "must name a .wasm file, got %q", p.Path)
		}
		if p.Command == "" {
			v.check(len(p.Args) == 0, at("args"), "needs command")
			v.check(p.SHA256 == "", at("sha256"), "needs command")
			v.check(p.Processes == 0, at("processes"), "needs command")
		}
		for j, g := range p.Grants {
			if !abi.KnownCapability(g) {
				v.add(fmt.Sprintf("plugins[%d].grants[%d]", i, j), "unknown capability %q (want one of %s)", g, strings.Join(capabilities, ", "))
			}
		}
		v.check(p.MinInstances >= 1, at("min_instances"), "must be >= 1")
		v.check(p.MaxInstances >= p.MinInstances, at("max_instances"), "must be >= min_instances (%d)", p.MinInstances)
		v.check(p.MemoryLimitPages >= 1 && p.MemoryLimitPages <= maxMemoryPages, at("memory_limit_pages"), "must be between 1 and %d", maxMemoryPages)
		v.check(p.CallTimeout > 0, at("call_timeout"), "must be > 0")
		v.check(len(p.HTTPHosts) == 0 || slices.Contains(p.Grants, abi.CapabilityHTTP), at("http_hosts"), "needs grant %q", abi.CapabilityHTTP)
		v.check(len(p.Secrets) == 0 || slices.Contains(p.Grants, abi.CapabilitySecrets), at("secrets"), "needs grant %q", abi.CapabilitySecrets)
		for j, h := range p.HTTPHosts {
			rest := strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://")
			v.check(rest != "" && !strings.ContainsAny(rest, "/?#@ "),
				fmt.Sprintf("plugins[%d].http_hosts[%d]", i, j), "%q must be host, *.domain, host:port or http://host:port", h)
		}
	}
}

// maxPluginProcesses bounds a native plugin's processes
// (kernel/plugin/native.MaxProcesses).
const maxPluginProcesses = 64

// validSHA256 reports whether s is a SHA-256 digest in hex.
func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// capabilities lists the capability names a plugin may be granted
// (abi.KnownCapability), for messages.
var capabilities = []string{
	abi.CapabilityLog, abi.CapabilityClock, abi.CapabilityRandom, abi.CapabilityConfig, abi.CapabilityKV,
	abi.CapabilitySecrets, abi.CapabilityUserLookup, abi.CapabilityAudit, abi.CapabilityHTTP,
}

const (
	// maxPluginIDLength is the longest plugin id.
	maxPluginIDLength = 128
	// maxMemoryPages is the most 64 KiB pages a 32-bit memory has.
	maxMemoryPages = 65536
)

// validPluginID reports whether s is 1 to maxPluginIDLength bytes of a-z,
// 0-9, '_', '-' and '.', starting with a letter or digit.
func validPluginID(s string) bool {
	if s == "" || len(s) > maxPluginIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) publicURL(s string) {
	const field = "public_url"
	if s == "" {
		v.add(field, "must not be empty")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(field, "is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(field, "must start with http:// or https://, got %q", s)
	case u.Host == "":
		v.add(field, "must have a host, got %q", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.add(field, "must not have user info, a query or a fragment, got %q", s)
	}
}

// isLoopback reports whether the listen address binds only to loopback:
// "localhost" or a loopback IP. An empty or unspecified host binds to every
// interface, and any other name may resolve to anything.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
