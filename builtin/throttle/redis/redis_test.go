package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/throttle/redis"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/throttle"
)

// redisAddr returns the test Redis or skips.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("LATCH_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("LATCH_TEST_REDIS_ADDR is not set; set it to a Redis host:port to run the distributed throttler tests")
	}
	return addr
}

// load loads one throttle.redis instance with cfg through a fresh registry.
func load(t testing.TB, cfg string) (*extension.Instances, error) {
	t.Helper()
	r := extension.NewRegistry()
	r.Register(redis.Module())
	set, err := r.Load(context.Background(), []extension.InstanceConfig{
		{Module: redis.ID, Config: json.RawMessage(cfg)},
	}, extension.LoadOptions{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := set.Close(context.Background()); err != nil {
			t.Errorf("closing: %v", err)
		}
	})
	return set, nil
}

func throttler(t testing.TB, addr string) (throttle.Throttler, *extension.Instance) {
	t.Helper()
	set, err := load(t, `{"addr":"`+addr+`","key_prefix":"latch-test:`+store.NewID()[:8]+`:"}`)
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := set.Get(string(redis.ID))
	th, ok := extension.As[throttle.Throttler](inst)
	if !ok {
		t.Fatal("not a throttler")
	}
	return th, inst
}

// TestREADMEExamples loads every JSON example of the README.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(b, -1)
	if len(examples) == 0 {
		t.Fatal("README.md has no JSON examples")
	}
	for i, ex := range examples {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if _, err := load(t, string(ex[1])); err != nil {
				t.Fatalf("loading README example %s: %v", ex[1], err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "empty", config: `{}`},
		{name: "every field", config: `{"addr":"r:6379","username":"u","password_env":"PATH","db":1,"key_prefix":"p:","timeout_millis":50,"pool_size":4,"tls":true}`},
		{name: "unknown field", config: `{"address":"r:6379"}`, wantErr: "config.address: unknown field"},
		{name: "bad db", config: `{"db":16}`, wantErr: "config.db: must be <= 15"},
		{name: "password inline", config: `{"password":"x"}`, wantErr: "config.password: unknown field"},
		{name: "unset password variable", config: `{"password_env":"LATCH_SURELY_UNSET_VAR"}`, wantErr: "LATCH_SURELY_UNSET_VAR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.config)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	th, _ := throttler(t, "127.0.0.1:1")
	tests := []struct {
		name string
		req  abi.AllowRequest
	}{
		{"zero rate", abi.AllowRequest{Key: "k", Limit: abi.Limit{PeriodMillis: 1000}}},
		{"negative cost", abi.AllowRequest{Key: "k", Cost: -1, Limit: abi.Limit{Rate: 1, PeriodMillis: 1000}}},
		{"cost above burst", abi.AllowRequest{Key: "k", Cost: 3, Limit: abi.Limit{Rate: 1, PeriodMillis: 1000, Burst: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := throttle.Check(th.Allow(t.Context(), tt.req))
			if fault.CodeOf(err) != fault.CodeInvalidRequest {
				t.Fatalf("err = %v, want invalid_request", err)
			}
		})
	}
}

// TestRedisDown: an unreachable Redis is an unavailable fault, so that the
// caller applies its fail mode.
func TestRedisDown(t *testing.T) {
	th, inst := throttler(t, "127.0.0.1:1")
	_, err := throttle.Check(th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "k", Limit: abi.Limit{Rate: 1, PeriodMillis: 1000}}))
	if fault.CodeOf(err) != fault.CodeUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if err := inst.Value().(extension.HealthChecker).Health(t.Context()); err == nil {
		t.Fatal("Health = nil with Redis down")
	}
}

// TestExactUnderConcurrencyAcrossNodes: two instances (two nodes) sharing
// one Redis, hammered by 64 goroutines, grant exactly the burst: the limit
// is one across nodes, not one per node.
func TestExactUnderConcurrencyAcrossNodes(t *testing.T) {
	addr := redisAddr(t)
	prefix := `"key_prefix":"latch-test:` + store.NewID() + `:"`
	var nodes []throttle.Throttler
	for range 2 {
		set, err := load(t, `{"addr":"`+addr+`",`+prefix+`}`)
		if err != nil {
			t.Fatal(err)
		}
		inst, _ := set.Get(string(redis.ID))
		th, _ := extension.As[throttle.Throttler](inst)
		nodes = append(nodes, th)
	}
	// 100 per hour: nothing refills while the test runs.
	limit := abi.Limit{Rate: 100, PeriodMillis: 3_600_000}
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th := nodes[g%2]
			for range 10 {
				resp, err := throttle.Check(th.Allow(context.Background(), abi.AllowRequest{Tenant: "acme", Key: "api:orders", Limit: limit}))
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Allowed {
					allowed.Add(1)
				} else {
					refused.Add(1)
					if resp.RetryAfterMillis <= 0 {
						t.Errorf("refused without a retry time: %+v", resp)
					}
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 100 || refused.Load() != 540 {
		t.Fatalf("allowed %d, refused %d; want exactly 100 and 540", allowed.Load(), refused.Load())
	}
}

// TestRemainingAndKeys: remaining counts down; tenants and long keys are
// separate buckets.
func TestRemainingAndKeys(t *testing.T) {
	th, _ := throttler(t, redisAddr(t))
	limit := abi.Limit{Rate: 3, PeriodMillis: 3_600_000}
	long := strings.Repeat("k", 1000)
	for i, want := range []int64{2, 1, 0} {
		resp, err := throttle.Check(th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: long, Limit: limit}))
		if err != nil || !resp.Allowed || resp.Remaining != want {
			t.Fatalf("request %d: %+v, %v; want allowed with %d remaining", i, resp, err, want)
		}
	}
	resp, err := throttle.Check(th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: long, Limit: limit}))
	if err != nil || resp.Allowed || throttle.Refusal(resp) == nil {
		t.Fatalf("fourth request: %+v, %v; want refused", resp, err)
	}
	if resp.RetryAfterMillis < 1_199_000 || resp.RetryAfterMillis > 1_200_000 {
		t.Fatalf("retry after %dms, want about 20 minutes", resp.RetryAfterMillis)
	}
	resp, err = throttle.Check(th.Allow(t.Context(), abi.AllowRequest{Tenant: "other", Key: long, Limit: limit}))
	if err != nil || !resp.Allowed {
		t.Fatalf("another tenant's bucket: %+v, %v", resp, err)
	}
}

func TestCloseUnprovisioned(t *testing.T) {
	th := redis.Module().New().(*redis.Throttler)
	if err := th.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := th.Allow(t.Context(), abi.AllowRequest{Key: "k", Limit: abi.Limit{Rate: 1, PeriodMillis: 1}})
	if !errors.Is(err, fault.Internal) && fault.CodeOf(err) != fault.CodeInternal {
		t.Fatalf("unprovisioned Allow: %v", err)
	}
}

// sharedClient is a node's shared cache as throttle.redis sees it.
type sharedClient struct {
	c      *goredis.Client
	prefix string
}

func (s sharedClient) Client() *goredis.Client { return s.c }
func (s sharedClient) Prefix() string          { return s.prefix }

// TestSharedClient: an instance configured without addr uses the node's
// shared Redis (DepClient), with its keys under the node's prefix and
// "throttle:", and leaves the connection open when it is closed; an
// instance with its own addr ignores the shared one.
func TestSharedClient(t *testing.T) {
	addr := redisAddr(t)
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	prefix := "latch-test:" + store.NewID() + ":"
	loadWith := func(cfg string) *extension.Instances {
		r := extension.NewRegistry()
		r.Register(redis.Module())
		set, err := r.Load(t.Context(), []extension.InstanceConfig{{Module: redis.ID, Config: json.RawMessage(cfg)}},
			extension.LoadOptions{Deps: map[string]any{redis.DepClient: sharedClient{client, prefix}}})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := loadWith(`{}`)
	inst, _ := set.Get(string(redis.ID))
	th, _ := extension.As[throttle.Throttler](inst)
	limit := abi.Limit{Rate: 1, PeriodMillis: 3_600_000}
	if resp, err := throttle.Check(th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "k", Limit: limit})); err != nil || !resp.Allowed {
		t.Fatalf("first request: %+v %v", resp, err)
	}
	keys, err := client.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], prefix+"throttle:acme") {
		t.Errorf("keys under the node's prefix: %q, want one starting %q", keys, prefix+"throttle:acme")
	}
	if err := set.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("closing the instance closed the node's connection: %v", err)
	}

	// Its own address wins: an unreachable one fails, whatever the node has.
	own := loadWith(`{"addr":"127.0.0.1:1","timeout_millis":100}`)
	t.Cleanup(func() { _ = own.Close(t.Context()) })
	inst, _ = own.Get(string(redis.ID))
	th, _ = extension.As[throttle.Throttler](inst)
	if _, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "k", Limit: limit}); fault.CodeOf(err) != fault.CodeUnavailable {
		t.Errorf("an instance with its own unreachable addr: %v, want unavailable", err)
	}
}
