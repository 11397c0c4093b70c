// Package cache opens the cache a cluster's nodes share (the cache section
// of the configuration, docs/operations.md): a Redis client built from
// cache.addr, cache.username, cache.password, cache.db, cache.tls,
// cache.ca_file, cache.max_conns and cache.timeout, with the cluster's key
// prefix. The node hands the client to the extensions that keep shared
// counters (throttle.redis without an address of its own) and reports its
// health on /readyz.
//
// The lifecycle:
//
//  1. Open builds the client; it does not dial, since Redis may start
//     after Latch;
//  2. Ping reports whether Redis answers (the readiness probe);
//  3. Close closes the connections.
package cache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchid/latch/kernel/config"
)

// ErrNoCA means cache.ca_file holds no PEM certificate.
var ErrNoCA = errors.New("no PEM certificate")

// Redis is the shared cache of a cluster. It is safe for concurrent use.
type Redis struct {
	client *goredis.Client
	prefix string
	addr   string
}

// Open returns the cache cfg describes, or nil when cfg.Driver is "none"
// (or empty): a node without a shared cache.
func Open(cfg config.CacheConfig) (*Redis, error) {
	switch cfg.Driver {
	case "", "none":
		return nil, nil
	case "redis":
	default:
		return nil, fmt.Errorf("cache.driver: unknown driver %q (want none or redis)", cfg.Driver)
	}
	opts, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	return &Redis{client: goredis.NewClient(opts), prefix: cfg.KeyPrefix, addr: cfg.Addr}, nil
}

// Options translates cfg into go-redis options.
func Options(cfg config.CacheConfig) (*goredis.Options, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = config.DefaultCacheAddr
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCacheTimeout
	}
	pool := cfg.MaxConns
	if pool <= 0 {
		pool = 10 * runtime.GOMAXPROCS(0)
	}
	opts := &goredis.Options{
		Addr:         addr,
		Username:     cfg.Username,
		Password:     cfg.Password.Value(),
		DB:           cfg.DB,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		PoolSize:     pool,
	}
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cache.ca_file: reading: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cache.ca_file: %s: %w", cfg.CAFile, ErrNoCA)
			}
			tc.RootCAs = pool
		}
		opts.TLSConfig = tc
	} else if cfg.CAFile != "" {
		return nil, errors.New("cache.ca_file: needs cache.tls: true")
	}
	return opts, nil
}

// Client returns the Redis client. Its keys must start with Prefix.
func (r *Redis) Client() *goredis.Client { return r.client }

// Prefix returns cache.key_prefix, which starts every key of this cluster.
func (r *Redis) Prefix() string { return r.prefix }

// Ping reports whether Redis answers, within ctx.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pinging redis at %s: %w", r.addr, err)
	}
	return nil
}

// Close closes the connections.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("closing redis client: %w", err)
	}
	return nil
}

// RouteLogs sends the Redis client library's own messages (failed dials,
// pool trouble), which it would otherwise print to stderr, to log at warn
// level. The library keeps one logger per process, so this applies to
// every Redis client of the process (the shared cache and throttle.redis
// instances with their own connection).
func RouteLogs(log *slog.Logger) {
	goredis.SetLogger(slogLogger{log: log.With("component", "redis")})
}

// slogLogger adapts slog to the Redis client's logging interface.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
