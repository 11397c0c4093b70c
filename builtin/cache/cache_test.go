package cache_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/cache"
	"github.com/latchid/latch/kernel/config"
)

func TestOpen(t *testing.T) {
	if c, err := cache.Open(config.Default().Cache); c != nil || err != nil {
		t.Fatalf("the default (driver none): %v %v, want no cache", c, err)
	}
	if _, err := cache.Open(config.CacheConfig{Driver: "memcached"}); err == nil {
		t.Error("an unknown driver was accepted")
	}

	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  config.CacheConfig
		want error
	}{
		{"ca file without tls", config.CacheConfig{Driver: "redis", CAFile: notPEM}, nil},
		{"ca file without a certificate", config.CacheConfig{Driver: "redis", TLS: true, CAFile: notPEM}, cache.ErrNoCA},
		{"missing ca file", config.CacheConfig{Driver: "redis", TLS: true, CAFile: filepath.Join(dir, "none.pem")}, os.ErrNotExist},
	} {
		_, err := cache.Open(tc.cfg)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want an error (%v)", tc.name, err, tc.want)
		}
	}

	opts, err := cache.Options(config.CacheConfig{Driver: "redis", Addr: "redis.internal:6380", Username: "latch", Password: "s3cret", DB: 2, MaxConns: 7, Timeout: time.Second, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Addr != "redis.internal:6380" || opts.Username != "latch" || opts.Password != "s3cret" || opts.DB != 2 ||
		opts.PoolSize != 7 || opts.ReadTimeout != time.Second || opts.TLSConfig == nil {
		t.Errorf("options %+v do not follow the configuration", opts)
	}
}

// TestPing reaches the test Redis, and fails on an address nothing
// listens on.
func TestPing(t *testing.T) {
	down, err := cache.Open(config.CacheConfig{Driver: "redis", Addr: "127.0.0.1:1", Timeout: 200 * time.Millisecond, KeyPrefix: "x:"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = down.Close() }()
	if err := down.Ping(t.Context()); err == nil {
		t.Error("pinging 127.0.0.1:1 succeeded")
	}
	addr := os.Getenv("LATCH_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("LATCH_TEST_REDIS_ADDR is not set: set it to a Redis host:port to ping a real Redis")
	}
	up, err := cache.Open(config.CacheConfig{Driver: "redis", Addr: addr, Timeout: time.Second, KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = up.Close() }()
	if err := up.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if up.Prefix() != "test:" || up.Client() == nil {
		t.Errorf("prefix %q client %v", up.Prefix(), up.Client())
	}
}

// TestRouteLogs: the client library's messages about an unreachable
// Redis reach the given logger, not stderr.
func TestRouteLogs(t *testing.T) {
	var buf bytes.Buffer
	cache.RouteLogs(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { cache.RouteLogs(slog.New(slog.DiscardHandler)) })
	down, err := cache.Open(config.CacheConfig{Driver: "redis", Addr: "127.0.0.1:1", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = down.Close() }()
	_ = down.Ping(t.Context())
	if !strings.Contains(buf.String(), "component=redis") {
		t.Skipf("the client logged nothing for the failed dials (%q)", buf.String())
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("redis client messages not logged at warn: %q", buf.String())
	}
}
