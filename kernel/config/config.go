package config

import (
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/latchid/latch/kernel/keys"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/wasmhost"
)

// Config is the server's configuration. Every field has one YAML key (its
// yaml tag, nested by section) and one environment variable (LATCH_ and the
// YAML path upper-cased, "." replaced by "_").
type Config struct {
	// Listen is the host:port the HTTP server listens on. Default
	// "127.0.0.1:8080". An empty host (":8080") listens on every interface.
	Listen string `yaml:"listen"`
	// PublicURL is the external base URL clients reach Latch at, used as the
	// issuer and in redirects (scheme, host, optional path; no trailing
	// slash). Default: derived from Listen ("http://127.0.0.1:8080", https
	// when TLS is configured, "localhost" for an unspecified host). Set it
	// whenever Latch runs behind a proxy or on another host name.
	PublicURL string `yaml:"public_url"`
	// DataDir holds the SQLite database and the development master key.
	// Default "./data".
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// MasterKey is the base64 of the 32-byte key secrets are sealed under at
	// rest (see kernel/secret). Empty: DataDir/master.key is used, and
	// generated when missing (for development only). Masked when printed.
	MasterKey Secret `yaml:"master_key"`
	// Store configures durable state.
	Store StoreConfig `yaml:"store"`
	// Cache configures the cache a cluster's nodes share (docs/operations.md).
	Cache CacheConfig `yaml:"cache"`
	// TLS configures HTTPS.
	TLS TLSConfig `yaml:"tls"`
	// HTTP configures the HTTP server.
	HTTP HTTPConfig `yaml:"http"`
	// Bootstrap holds the credentials created at first start.
	Bootstrap BootstrapConfig `yaml:"bootstrap"`
	// Keys configures token signing keys.
	Keys KeysConfig `yaml:"keys"`
	// Password configures password hashing.
	Password PasswordConfig `yaml:"password"`
	// OAuth configures the OAuth 2.0 authorization server.
	OAuth OAuthConfig `yaml:"oauth"`
	// Extensions lists the extension instances to load and which tenants
	// use them. It is set in the file only (it has no environment
	// variables).
	Extensions ExtensionsConfig `yaml:"extensions"`
	// WASM configures the WebAssembly host that runs the plugins.
	WASM WASMConfig `yaml:"wasm"`
	// Bundles configures the plugin bundles installed through the admin API
	// (docs/bundles.md).
	Bundles BundlesConfig `yaml:"bundles"`
	// Gateway runs the API gateway role (docs/gateway.md) beside the
	// identity server.
	Gateway GatewayConfig `yaml:"gateway"`
	// UI configures the login, consent and logout pages.
	UI UIConfig `yaml:"ui"`
	// Mail is the SMTP server of the self-service pages.
	Mail MailConfig `yaml:"mail"`
	// Adaptive configures the adaptive script engine.
	Adaptive AdaptiveConfig `yaml:"adaptive"`
	// Captcha is the CAPTCHA provider of the self-service pages.
	Captcha CaptchaConfig `yaml:"captcha"`
	// Plugins lists the extension modules to load from WebAssembly files;
	// their extensions join the builtin modules, to be instantiated under
	// extensions.instances. It is set in the file only (it has no
	// environment variables). Empty: no WASM host is started.
	Plugins []PluginConfig `yaml:"plugins" env:"-"`
}

// GatewayConfig enables the API gateway role (builtin/gateway). It has its
// own listener because the APIs it publishes own their whole path space,
// which would collide with the node's endpoints (/oauth2, /api/admin,
// /metrics), and because the proxy runs on net/http rather than the node's
// fiber server.
type GatewayConfig struct {
	// RoutesFile is the YAML file of issuers, APIs and upstreams; it is
	// watched and hot-reloaded. Empty: the gateway role is off.
	RoutesFile string `yaml:"routes_file"`
	// Listen is the host:port the gateway serves on. Default
	// 127.0.0.1:8081.
	Listen string `yaml:"listen"`
}

// WASMConfig configures the WebAssembly host (see kernel/wasmhost).
type WASMConfig struct {
	// CacheDir holds the compiled machine code of the plugins, so that a
	// restart does not compile them again. It must be private to Latch.
	// Default DataDir/wasm-cache.
	CacheDir string `yaml:"cache_dir"`
}

// BundlesConfig is the installation's trust in plugin bundle signers.
type BundlesConfig struct {
	// TrustedKeys are the public keys of the signers whose bundles are
	// accepted, each "ed25519:" and the base64 of 32 bytes (as `latch
	// bundle keygen` prints it). Comma-separated in the environment.
	TrustedKeys []string `yaml:"trusted_keys"`
	// AllowUnsigned accepts bundles without a signature, for development
	// only. A signed bundle must still verify. Default false.
	AllowUnsigned bool `yaml:"allow_unsigned"`
}

// PluginConfig configures one plugin built for the Latch ABI
// (abi/SPEC.md): a WebAssembly module (Path) or a native go-plugin binary
// (Command), whose extensions are registered under the ids its description
// declares ("authn.sms_otp").
type PluginConfig struct {
	// ID names the module in logs, metrics and errors: 1 to 128 bytes of
	// a-z, 0-9, '_', '-' and '.', starting with a letter or digit, unique
	// among the plugins. Required.
	ID string `yaml:"id"`
	// Path is the module's .wasm file. Exactly one of Path and Command is
	// set.
	Path string `yaml:"path"`
	// Command is a native plugin binary (built with
	// sdk/plugin/native.Serve), run out of process and supervised: a
	// process that dies is restarted with backoff, and its calls fail as
	// unavailable meanwhile. Exactly one of Path and Command is set.
	Command string `yaml:"command"`
	// Args are the native binary's arguments.
	Args []string `yaml:"args"`
	// SHA256, when set, is the hex SHA-256 the native binary must have; it
	// is checked before every start.
	SHA256 string `yaml:"sha256"`
	// Processes is how many processes of the native binary run; each
	// serves one call at a time. Default 1; at most 64.
	Processes int `yaml:"processes"`
	// Grants lists the capabilities the operator grants the module: log,
	// clock, random, config, kv, secrets, userlookup, audit, http. Nothing
	// is granted by default; a module that asks for a capability not
	// listed here is refused at start, naming it.
	Grants []string `yaml:"grants"`
	// MinInstances is how many instances are created at start and kept
	// warm. Default 1.
	MinInstances int `yaml:"min_instances"`
	// MaxInstances bounds the instances, and so the calls into the module
	// running at once. Default max(min_instances, number of CPUs).
	MaxInstances int `yaml:"max_instances"`
	// MemoryLimitPages caps each instance's memory, in 64 KiB pages.
	// Default 1024 (64 MiB); at most 65536.
	MemoryLimitPages uint32 `yaml:"memory_limit_pages"`
	// CallTimeout is the deadline of one call into the module; a guest
	// still running is stopped. Default 1s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// HTTPHosts is the allow-list of outbound HTTP (with grant http):
	// "api.example.com" (https on 443), "*.example.com", "host:8443",
	// "http://10.0.0.7:8080" (plain http to that host and port). Loopback,
	// private and link-local addresses are refused unless an entry names
	// the address itself.
	HTTPHosts []string `yaml:"http_hosts"`
	// Secrets are named secrets the module reads with grant secrets. They
	// are kept sealed with the master key in memory and never logged.
	Secrets map[string]Secret `yaml:"secrets"`
}

// ExtensionsConfig lists extension instances and their per-tenant
// enablement (see kernel/extension). Kinds are named by their abi names:
// authenticator, grant, userstore, claims, throttler, provisioner.
type ExtensionsConfig struct {
	// Instances are loaded in order at start. Empty: one instance of every
	// builtin module, named after the module, with its default
	// configuration.
	Instances []ExtensionInstance `yaml:"instances" env:"-"`
	// Default maps a kind to the ordered instance names tenants use when
	// they set nothing themselves. A kind missing here uses every instance
	// of that kind, in load order.
	Default map[string][]string `yaml:"default" env:"-"`
	// Tenants maps a tenant name to its own kind → instance names lists.
	Tenants map[string]map[string][]string `yaml:"tenants" env:"-"`
	// UserStores names the domains of the user store instances and each
	// tenant's primary store (docs/userstores.md); the search order is
	// the userstore list of Default or Tenants.
	UserStores UserStoreDomains `yaml:"userstores" env:"-"`
}

// UserStoreDomains configures user store domains (kernel/userstore/router).
type UserStoreDomains struct {
	// Domains maps a user store instance name to its domain prefix
	// (LDAP in "LDAP/alice"): upper-case letters, digits, '-' and '_'.
	// An instance without an entry has its name, upper-cased.
	Domains map[string]string `yaml:"domains"`
	// Primary is the primary store instance (its users have no prefix and
	// new users are written there); empty: the first store of each
	// tenant's search order.
	Primary string `yaml:"primary"`
	// TenantPrimary maps a tenant name to its own primary store instance.
	TenantPrimary map[string]string `yaml:"tenant_primary"`
}

// ExtensionInstance configures one extension instance.
type ExtensionInstance struct {
	// Name names the instance; empty means the module id.
	Name string `yaml:"name"`
	// Module is the module id, e.g. "userstore.local".
	Module string `yaml:"module"`
	// Config is the instance's configuration, checked against the module's
	// JSON Schema when the node loads it.
	Config map[string]any `yaml:"config"`
	// Rules, for a provisioner instance (builtin, plugin or bundle),
	// decide which users and groups it receives: groups, roles,
	// attributes, filter and deprovision, the same object for every
	// provisioner (docs/scim.md, "Provisioning rules"). The node checks
	// them strictly when it loads the instance; empty: everything.
	Rules map[string]any `yaml:"rules"`
}

// StoreConfig configures the storage backend.
type StoreConfig struct {
	// Driver is "sqlite" (embedded, one node; default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the data source: for sqlite a plain file path (default
	// DataDir/latch.db), for postgres a URL or key=value string (required).
	// Its password is masked when printed.
	DSN DSN `yaml:"dsn"`
	// MaxOpenConns caps open connections; 0 lets the backend choose. For
	// sqlite it sizes the reader pool (writes always use one connection);
	// for postgres it caps the pool (default: max(4, CPUs)).
	MaxOpenConns int `yaml:"max_open_conns"`
	// ConnMaxLifetime closes postgres connections older than this; 0 keeps
	// pgxpool's default of one hour. sqlite ignores it.
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
}

// CacheConfig configures the cache shared by a cluster's nodes: Redis
// holds the throttling counters of throttle.redis instances configured
// without their own address, and /readyz reports its health. Durable state
// and the short-lived state of flows stay in the store.
type CacheConfig struct {
	// Driver is "none" (no shared cache; default) or "redis".
	Driver string `yaml:"driver"`
	// Addr is the Redis host:port. Default "127.0.0.1:6379".
	Addr string `yaml:"addr"`
	// Username is the Redis ACL user; empty for the default user.
	Username string `yaml:"username"`
	// Password is the Redis password. Masked when printed.
	Password Secret `yaml:"password"`
	// DB is the Redis database number.
	DB int `yaml:"db"`
	// KeyPrefix starts every key Latch writes, so that several clusters
	// can share one Redis. Default "latch:".
	KeyPrefix string `yaml:"key_prefix"`
	// MaxConns caps the connections per node; 0 means 10 per CPU.
	MaxConns int `yaml:"max_conns"`
	// Timeout bounds dialing and each command. Default 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// TLS makes the client speak TLS to Redis.
	TLS bool `yaml:"tls"`
	// CAFile is a PEM file of the CAs that sign Redis's certificate; empty
	// means the system's roots. Only with TLS.
	CAFile string `yaml:"ca_file"`
}

// Defaults of the cache section.
const (
	DefaultCacheDriver    = "none"
	DefaultCacheAddr      = "127.0.0.1:6379"
	DefaultCacheKeyPrefix = "latch:"
	DefaultCacheTimeout   = 500 * time.Millisecond
)

// TLSConfig configures HTTPS. Without a certificate Latch serves plain
// HTTP, which Validate allows only on a loopback Listen address unless
// Insecure is set.
type TLSConfig struct {
	// CertFile is the PEM certificate chain file.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key file.
	KeyFile string `yaml:"key_file"`
	// Insecure allows plain HTTP on a non-loopback address. Set it only
	// when a proxy in front of Latch terminates TLS.
	Insecure bool `yaml:"insecure"`
	// ClientCAFile is a PEM file of the CAs whose client certificates the
	// TLS handshake accepts (optional: a browser without one still
	// connects). A verified certificate reaches the authenticators, for
	// authn.x509. Needs CertFile.
	ClientCAFile string `yaml:"client_ca_file"`
	// SelfSignedClientCerts makes the handshake ask for a client
	// certificate without naming CAs and accept any one, so that OAuth
	// clients may authenticate with the self-signed certificate they
	// registered (self_signed_tls_client_auth, RFC 8705 section 2.2).
	// Certificates that chain to client_ca_file are still told apart as
	// verified; the others count only where a client registered them.
	// Needs CertFile.
	SelfSignedClientCerts bool `yaml:"self_signed_client_certs"`
}

// OAuthConfig configures the OAuth 2.0 authorization server
// (docs/oauth.md).
type OAuthConfig struct {
	// DPoPNonceRequired makes every tenant's token endpoint and UserInfo
	// endpoint require a server-provided nonce in DPoP proofs (RFC 9449
	// sections 8 and 9). Without it, tenants and clients opt in with
	// their dpop_nonce_required setting.
	DPoPNonceRequired bool `yaml:"dpop_nonce_required"`
}

// HTTPConfig configures the HTTP server.
type HTTPConfig struct {
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a graceful shutdown waits for requests in
	// flight. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// BodyLimit is the largest request body accepted, as bytes or with a
	// unit ("1MiB", "512KiB", "10MB"). Default 1MiB.
	BodyLimit ByteSize `yaml:"body_limit"`
	// TrustedProxies lists the IP addresses and CIDR prefixes whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed. Empty:
	// none. In the environment, a comma-separated list.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// BootstrapConfig holds the credentials Latch creates at first start, when
// the store is empty. Empty values are generated and printed once.
type BootstrapConfig struct {
	// AdminPassword is the password of the first administrator. Masked when
	// printed.
	AdminPassword Secret `yaml:"admin_password"`
	// ClientSecret is the secret of the first admin API client. Masked when
	// printed.
	ClientSecret Secret `yaml:"client_secret"`
}

// KeysConfig configures token signing keys (see kernel/keys).
type KeysConfig struct {
	// Algorithm is the default signing algorithm: ES256 (default), RS256 or
	// EdDSA.
	Algorithm string `yaml:"algorithm"`
	// Overlap is how long a rotated-out key stays published so tokens it
	// signed still verify. It must exceed the longest token lifetime.
	// Default 24h.
	Overlap time.Duration `yaml:"overlap"`
}

// PasswordConfig sets argon2id's cost (see kernel/password). The defaults
// are OWASP's recommendation.
type PasswordConfig struct {
	// Memory is the memory cost in KiB. Default 19456 (19 MiB).
	Memory uint32 `yaml:"memory"`
	// Iterations is the time cost. Default 2.
	Iterations uint32 `yaml:"iterations"`
	// Parallelism is the number of lanes. Default 1.
	Parallelism uint8 `yaml:"parallelism"`
}

// Params returns the argon2id parameters, with salt and key lengths from
// password.DefaultParams.
func (p PasswordConfig) Params() password.Params {
	return password.Params{
		Memory:      p.Memory,
		Iterations:  p.Iterations,
		Parallelism: p.Parallelism,
		SaltLength:  password.DefaultParams.SaltLength,
		KeyLength:   password.DefaultParams.KeyLength,
	}
}

// Defaults of fields that are not derived from others.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultDataDir   = "./data"
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
	DefaultDriver    = "sqlite"
	// DefaultSQLiteFile is the database file name inside DataDir.
	DefaultSQLiteFile = "latch.db"
	// DefaultWASMCacheDir is the compilation cache folder inside DataDir.
	DefaultWASMCacheDir = "wasm-cache"
	DefaultBodyLimit    = ByteSize(1 << 20)
)

// DefaultGatewayListen is gateway.listen when unset.
const DefaultGatewayListen = "127.0.0.1:8081"

// Default returns the configuration used when nothing is set, with derived
// fields (PublicURL, Store.DSN) filled in.
func Default() Config {
	c := defaults()
	c.derive()
	return c
}

// defaults returns the defaults without derived fields, the base Load
// layers sources on.
func defaults() Config {
	return Config{
		Listen:    DefaultListen,
		DataDir:   DefaultDataDir,
		LogLevel:  DefaultLogLevel,
		LogFormat: DefaultLogFormat,
		Store:     StoreConfig{Driver: DefaultDriver},
		Cache:     CacheConfig{Driver: DefaultCacheDriver, Addr: DefaultCacheAddr, KeyPrefix: DefaultCacheKeyPrefix, Timeout: DefaultCacheTimeout},
		Gateway:   GatewayConfig{Listen: DefaultGatewayListen},
		HTTP: HTTPConfig{
			ReadTimeout:     30 * time.Second,
			WriteTimeout:    30 * time.Second,
			IdleTimeout:     2 * time.Minute,
			ShutdownTimeout: 30 * time.Second,
			BodyLimit:       DefaultBodyLimit,
		},
		Keys: KeysConfig{Algorithm: keys.DefaultAlgorithm, Overlap: keys.DefaultOverlap},
		Password: PasswordConfig{
			Memory:      password.DefaultParams.Memory,
			Iterations:  password.DefaultParams.Iterations,
			Parallelism: password.DefaultParams.Parallelism,
		},
	}
}

// derive fills fields whose default depends on others, and the defaults of
// each plugin's fields, after every source has been applied.
func (c *Config) derive() {
	if c.PublicURL == "" {
		c.PublicURL = derivePublicURL(c.Listen, c.TLS.CertFile != "")
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Store.DSN == "" && c.Store.Driver == "sqlite" && c.DataDir != "" {
		c.Store.DSN = DSN(filepath.Join(c.DataDir, DefaultSQLiteFile))
	}
	if c.WASM.CacheDir == "" && c.DataDir != "" {
		c.WASM.CacheDir = filepath.Join(c.DataDir, DefaultWASMCacheDir)
	}
	for i := range c.Plugins {
		p := &c.Plugins[i]
		if p.MinInstances == 0 {
			p.MinInstances = 1
		}
		if p.MaxInstances == 0 {
			p.MaxInstances = max(p.MinInstances, runtime.GOMAXPROCS(0))
		}
		if p.MemoryLimitPages == 0 {
			p.MemoryLimitPages = wasmhost.DefaultMemoryLimitPages
		}
		if p.CallTimeout == 0 {
			p.CallTimeout = wasmhost.DefaultCallTimeout
		}
		if p.Command != "" && p.Processes == 0 {
			p.Processes = 1
		}
	}
}

func derivePublicURL(listen string, tls bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "" // Validate reports the listen address
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
