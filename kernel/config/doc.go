// Package config loads Latch's server configuration from, weakest to
// strongest: built-in defaults, a YAML file (latch.yaml), LATCH_*
// environment variables, and command-line flags.
//
// # File
//
// The file is decoded strictly: a key Latch does not know is an error that
// names the key by its path and line, so a typo never silently falls back
// to a default. Durations take a unit ("30s", "24h"); sizes take bytes or a
// unit ("1MiB"). testdata/latch.example.yaml lists every key with its
// default.
//
// # Environment
//
// Every leaf of the file but the extensions and plugins sections (file
// only) has one variable: LATCH_ followed by its YAML path
// upper-cased, with "." replaced by "_". The list is generated from the
// Config struct (see EnvVars), so it cannot drift from the file format; a
// test keeps this table complete. A variable set to "" counts as unset.
// Lists are comma-separated.
//
//	LATCH_LISTEN                    listen
//	LATCH_PUBLIC_URL                public_url
//	LATCH_DATA_DIR                  data_dir
//	LATCH_LOG_LEVEL                 log_level
//	LATCH_LOG_FORMAT                log_format
//	LATCH_MASTER_KEY                master_key
//	LATCH_STORE_DRIVER              store.driver
//	LATCH_STORE_DSN                 store.dsn
//	LATCH_STORE_MAX_OPEN_CONNS      store.max_open_conns
//	LATCH_STORE_CONN_MAX_LIFETIME   store.conn_max_lifetime
//	LATCH_CACHE_ADDR                cache.addr
//	LATCH_CACHE_CA_FILE             cache.ca_file
//	LATCH_CACHE_DB                  cache.db
//	LATCH_CACHE_DRIVER              cache.driver
//	LATCH_CACHE_KEY_PREFIX          cache.key_prefix
//	LATCH_CACHE_MAX_CONNS           cache.max_conns
//	LATCH_CACHE_PASSWORD            cache.password
//	LATCH_CACHE_TIMEOUT             cache.timeout
//	LATCH_CACHE_TLS                 cache.tls
//	LATCH_CACHE_USERNAME            cache.username
//	LATCH_TLS_CERT_FILE             tls.cert_file
//	LATCH_TLS_KEY_FILE              tls.key_file
//	LATCH_TLS_INSECURE              tls.insecure
//	LATCH_TLS_CLIENT_CA_FILE        tls.client_ca_file
//	LATCH_TLS_SELF_SIGNED_CLIENT_CERTS  tls.self_signed_client_certs
//	LATCH_UI_THEME_DIR              ui.theme_dir
//	LATCH_MAIL_SMTP_ADDR            mail.smtp_addr
//	LATCH_MAIL_FROM                 mail.from
//	LATCH_MAIL_USERNAME             mail.username
//	LATCH_MAIL_PASSWORD             mail.password
//	LATCH_MAIL_TLS_MODE             mail.tls_mode
//	LATCH_ADAPTIVE_HTTP_ALLOW       adaptive.http_allow (comma-separated)
//	LATCH_CAPTCHA_VERIFY_URL        captcha.verify_url
//	LATCH_CAPTCHA_SECRET            captcha.secret
//	LATCH_CAPTCHA_SITE_KEY          captcha.site_key
//	LATCH_CAPTCHA_SCRIPT_URL        captcha.script_url
//	LATCH_CAPTCHA_WIDGET_CLASS      captcha.widget_class
//	LATCH_CAPTCHA_RESPONSE_FIELD    captcha.response_field
//	LATCH_CAPTCHA_INSECURE          captcha.insecure
//	LATCH_HTTP_READ_TIMEOUT         http.read_timeout
//	LATCH_HTTP_WRITE_TIMEOUT        http.write_timeout
//	LATCH_HTTP_IDLE_TIMEOUT         http.idle_timeout
//	LATCH_HTTP_SHUTDOWN_TIMEOUT     http.shutdown_timeout
//	LATCH_HTTP_BODY_LIMIT           http.body_limit
//	LATCH_HTTP_TRUSTED_PROXIES      http.trusted_proxies
//	LATCH_BOOTSTRAP_ADMIN_PASSWORD  bootstrap.admin_password
//	LATCH_BOOTSTRAP_CLIENT_SECRET   bootstrap.client_secret
//	LATCH_KEYS_ALGORITHM            keys.algorithm
//	LATCH_KEYS_OVERLAP              keys.overlap
//	LATCH_PASSWORD_MEMORY           password.memory
//	LATCH_PASSWORD_ITERATIONS       password.iterations
//	LATCH_PASSWORD_PARALLELISM      password.parallelism
//	LATCH_OAUTH_DPOP_NONCE_REQUIRED oauth.dpop_nonce_required
//	LATCH_WASM_CACHE_DIR            wasm.cache_dir
//	LATCH_BUNDLES_TRUSTED_KEYS      bundles.trusted_keys
//	LATCH_BUNDLES_ALLOW_UNSIGNED    bundles.allow_unsigned
//	LATCH_GATEWAY_ROUTES_FILE       gateway.routes_file
//	LATCH_GATEWAY_LISTEN            gateway.listen
//
// # Flags
//
// RegisterFlags defines --listen, --public-url, --data, --log-level,
// --store-driver and --store-dsn, which override everything else when set
// on the command line, and --config, the file path the caller passes to
// Load.
//
// # Secrets
//
// master_key, bootstrap.admin_password and bootstrap.client_secret are of
// type Secret, and store.dsn of type DSN: printing, logging or encoding them
// shows "********" in place of the secret. Prefer the environment for them
// in production, so they stay out of files.
//
// # Plugins
//
// The plugins section lists WebAssembly modules (id, path, grants, pool
// and limits) and native plugin binaries (command, args, sha256,
// processes in place of path and the pool); Validate names a bad entry by its path
// ("plugins[1].path: must not be empty"). Their per-entry defaults
// (min_instances, max_instances, memory_limit_pages, call_timeout) are
// filled in when the configuration is loaded, so Print shows what will
// run. The compiled modules are cached in wasm.cache_dir.
package config
