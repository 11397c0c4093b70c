// Package redis is the throttle.redis extension: a distributed rate limiter
// whose counters live in Redis, so that one limit holds across every node
// that shares the Redis server — N nodes do not give N times the limit.
//
// # Algorithm
//
// The same generic cell rate algorithm (GCRA) as throttle.local, run as one
// Lua script inside Redis so that each decision is atomic: the script reads
// the key's theoretical arrival time (TAT), takes the time from Redis's own
// clock (TIME, so that nodes' clocks need not agree), grants the request
// when max(TAT, now) + n·T − τ ≤ now, and then stores the new TAT with an
// expiry at the moment the bucket is full again. A refused request writes
// nothing. Times are whole microseconds. With T = Period/Rate and τ =
// Burst·T, see builtin/throttle/local for the derivation.
//
// # Failure
//
// When Redis cannot be reached within timeout_millis, Allow returns a
// fault.Unavailable error; the caller applies its fail mode (the gateway's
// throttle.fail: closed refuses with 503, open lets the request through).
//
// # Why go-redis
//
// github.com/redis/go-redis/v9 is the maintained Redis client: pooled
// connections, EVALSHA with a fall-back to EVAL when the script cache was
// flushed (redis.Script), TLS and ACL users.
package redis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	_ "embed" // the configuration schema
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/throttle"
)

// ID is the module id.
const ID extension.ID = "throttle.redis"

// Defaults of the configuration fields.
const (
	DefaultAddr          = "127.0.0.1:6379"
	DefaultKeyPrefix     = "latch:throttle:"
	DefaultTimeoutMillis = 200
)

const (
	// maxKeyLength is the longest key stored as it is; longer keys are
	// replaced by their SHA-256.
	maxKeyLength = 256
	// maxSpanMicros bounds the period and Burst·T (about 100 years) so
	// that the script's arithmetic stays exact in a double.
	maxSpanMicros = int64(100 * 365 * 24 * time.Hour / time.Microsecond)
)

// DepClient is the dependency (extension.Env.Dep) under which a node with
// a shared cache (the cache section, cache.driver: redis) provides its
// Redis: a SharedClient. An instance configured without addr uses it,
// with the keys under the node's cache.key_prefix followed by
// DefaultKeyPrefix without its "latch:" (or the instance's key_prefix), so
// the counters follow the cluster's cache without a second configuration.
const DepClient = "cache.redis"

// SharedClient is the node's Redis connection and key prefix.
type SharedClient interface {
	Client() *goredis.Client
	Prefix() string
}

// ErrCostExceedsBurst means a request asks for more units than the limit's
// burst: it could never be granted. It is wrapped in a
// fault.InvalidRequest.
var ErrCostExceedsBurst = errors.New("cost exceeds burst")

//go:embed config.schema.json
var configSchema []byte

// gcra is the decision script. KEYS[1] is the bucket; ARGV is T, τ and the
// cost, in microseconds and units. It answers {allowed, remaining,
// retry_after_us, reset_after_us}. The TAT is written with %.0f because
// Lua's tostring keeps only 14 significant digits.
var gcra = goredis.NewScript(`
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local nxt = tat + cost * T
local allow_at = nxt - tau
if allow_at > now then
  local rem = math.floor((tau - (tat - now)) / T)
  if rem < 0 then rem = 0 end
  return {0, rem, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
local rem = math.floor((tau - (nxt - now)) / T)
if rem < 0 then rem = 0 end
return {1, rem, 0, nxt - now}
`)

// Module returns the throttle.redis module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindThrottler,
		New:          func() any { return new(Throttler) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Distributed GCRA rate limiter on Redis: one limit across all nodes.",
	}
}

// Throttler is a throttle.redis instance. Its exported fields are its
// configuration (see config.schema.json).
type Throttler struct {
	// Addr is host:port of the Redis server.
	Addr string `json:"addr,omitempty"`
	// Username is the ACL user.
	Username string `json:"username,omitempty"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// DB is the database number.
	DB int `json:"db,omitempty"`
	// KeyPrefix starts every key.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// TimeoutMillis bounds one decision.
	TimeoutMillis int64 `json:"timeout_millis,omitempty"`
	// PoolSize is the connections kept.
	PoolSize int `json:"pool_size,omitempty"`
	// TLS makes the client speak TLS.
	TLS bool `json:"tls,omitempty"`

	client  *goredis.Client
	shared  bool // client is the node's: Close leaves it open
	timeout time.Duration
	m       *metrics
}

// Provision fills in defaults and builds the client. It does not dial:
// Redis may start after Latch; Health reports whether it answers.
func (t *Throttler) Provision(ctx context.Context, env extension.Env) error {
	if t.TimeoutMillis == 0 {
		t.TimeoutMillis = DefaultTimeoutMillis
	}
	if t.Addr == "" && t.Username == "" && t.PasswordEnv == "" && t.DB == 0 && !t.TLS {
		if d, ok := env.Dep(DepClient); ok {
			if sc, ok := d.(SharedClient); ok && sc != nil && sc.Client() != nil {
				return t.provisionShared(env, sc)
			}
		}
	}
	if t.Addr == "" {
		t.Addr = DefaultAddr
	}
	if t.KeyPrefix == "" {
		t.KeyPrefix = DefaultKeyPrefix
	}
	if t.PoolSize == 0 {
		t.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	t.timeout = time.Duration(t.TimeoutMillis) * time.Millisecond
	var password string
	if t.PasswordEnv != "" {
		var ok bool
		if password, ok = os.LookupEnv(t.PasswordEnv); !ok {
			return fmt.Errorf("provisioning %s: environment variable %s (password_env) is not set", ID, t.PasswordEnv)
		}
	}
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	t.m = m
	opts := &goredis.Options{
		Addr:         t.Addr,
		Username:     t.Username,
		Password:     password,
		DB:           t.DB,
		DialTimeout:  t.timeout,
		ReadTimeout:  t.timeout,
		WriteTimeout: t.timeout,
		PoolSize:     t.PoolSize,
		MaxRetries:   -1, // a decision is not retried: the caller's fail mode applies
	}
	if t.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.client = goredis.NewClient(opts)
	return nil
}

// provisionShared makes t use the node's Redis connection.
func (t *Throttler) provisionShared(env extension.Env, sc SharedClient) error {
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	t.m = m
	t.client, t.shared = sc.Client(), true
	t.Addr = sc.Client().Options().Addr
	if t.KeyPrefix == "" {
		t.KeyPrefix = strings.TrimPrefix(DefaultKeyPrefix, "latch:")
	}
	t.KeyPrefix = sc.Prefix() + t.KeyPrefix
	t.timeout = time.Duration(t.TimeoutMillis) * time.Millisecond
	return nil
}

// Health reports whether Redis answers.
func (t *Throttler) Health(ctx context.Context) error {
	if t.client == nil {
		return errors.New("throttler not provisioned")
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pinging redis at %s: %w", t.Addr, err)
	}
	return nil
}

// Close closes the connections. It copes with a Throttler that was never
// provisioned.
func (t *Throttler) Close(ctx context.Context) error {
	if t.client == nil || t.shared {
		return nil
	}
	if err := t.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("closing redis client: %w", err)
	}
	return nil
}

// Allow decides whether req.Key of req.Tenant may spend req.Cost units now
// under req.Limit, and spends them when it may, atomically in Redis.
func (t *Throttler) Allow(ctx context.Context, req abi.AllowRequest) (abi.AllowResponse, error) {
	T, tau, err := schedule(req.Limit)
	if err != nil {
		return abi.AllowResponse{}, fault.InvalidRequest.WithMessage(err.Error()).WithCause(err)
	}
	cost := req.Cost
	switch {
	case cost == 0:
		cost = 1
	case cost < 0:
		return abi.AllowResponse{}, fault.InvalidRequest.WithMessage("cost must be >= 0").WithField("cost")
	case cost > tau/T:
		err := fmt.Errorf("allowing %d units under a burst of %d: %w", cost, tau/T, ErrCostExceedsBurst)
		return abi.AllowResponse{}, fault.InvalidRequest.WithMessage(err.Error()).WithField("cost").WithCause(err)
	}
	if t.client == nil {
		return abi.AllowResponse{}, fault.Internal.WithCause(errors.New("allowing: throttler not provisioned"))
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	res, err := gcra.Run(ctx, t.client, []string{t.key(req.Tenant, req.Key)}, T, tau, cost).Int64Slice()
	if err != nil || len(res) != 4 {
		t.m.errors.Inc()
		if err == nil {
			err = fmt.Errorf("unexpected answer %v", res)
		}
		return abi.AllowResponse{}, fault.Unavailable.WithMessage("the rate limiter store is unavailable").
			WithCause(fmt.Errorf("allowing on redis %s: %w", t.Addr, err))
	}
	resp := abi.AllowResponse{
		Allowed:          res[0] == 1,
		Remaining:        max(0, res[1]),
		RetryAfterMillis: ceilMillis(res[2]),
		ResetAfterMillis: ceilMillis(res[3]),
	}
	if resp.Allowed {
		t.m.allowed.Inc()
	} else {
		t.m.refused.Inc()
	}
	return resp, nil
}

// key is the Redis key of (tenant, key): the prefix, the tenant, a NUL
// (tenant names cannot hold one), then 'k' and the key, or 'h' and the hex
// SHA-256 of a long key. A hash tag around the tenant would not help: each
// decision touches one key.
func (t *Throttler) key(tenant, key string) string {
	if len(key) <= maxKeyLength {
		return t.KeyPrefix + tenant + "\x00k" + key
	}
	sum := sha256.Sum256([]byte(key))
	return t.KeyPrefix + tenant + "\x00h" + hex.EncodeToString(sum[:])
}

// schedule returns the emission interval T and the tolerance τ = Burst·T of
// l, in microseconds. T is rounded down to whole microseconds (at least 1).
func schedule(l abi.Limit) (T, tau int64, err error) {
	if err := throttle.ValidateLimit(l); err != nil {
		return 0, 0, err
	}
	if l.PeriodMillis > maxSpanMicros/1000 {
		return 0, 0, fmt.Errorf("validating limit: %w: period_millis must be at most %d", throttle.ErrInvalidLimit, maxSpanMicros/1000)
	}
	T = max(1, l.PeriodMillis*1000/l.Rate)
	burst := l.Burst
	if burst == 0 {
		burst = l.Rate
	}
	if burst > maxSpanMicros/T {
		return 0, 0, fmt.Errorf("validating limit: %w: burst × period / rate must be at most 100 years", throttle.ErrInvalidLimit)
	}
	return T, burst * T, nil
}

// ceilMillis rounds microseconds up to whole milliseconds, so that a client
// that waits the answer is never early.
func ceilMillis(us int64) int64 {
	return (us + 999) / 1000
}

// metrics are the instance's own metrics (the kernel counts the calls).
type metrics struct {
	allowed, refused, errors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "throttle_redis", Name: "decisions_total",
		Help: "Rate limit decisions by result (allowed, refused, error).",
	}, []string{"result"})
	if err := reg.Register(decisions); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
		decisions = existing
	}
	return &metrics{
		allowed: decisions.WithLabelValues("allowed"),
		refused: decisions.WithLabelValues("refused"),
		errors:  decisions.WithLabelValues("error"),
	}, nil
}

var (
	_ throttle.Throttler      = (*Throttler)(nil)
	_ extension.Provisioner   = (*Throttler)(nil)
	_ extension.Cleaner       = (*Throttler)(nil)
	_ extension.HealthChecker = (*Throttler)(nil)
)
