package local

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/throttle"
)

// fakeClock is a settable monotonic clock, in nanoseconds.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTest returns a Throttler set up as Provision does, without the sweep
// goroutine, on a fake clock.
func newTest(t testing.TB, maxKeys int, whenFull string) (*Throttler, *fakeClock) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{}
	th := &Throttler{MaxKeys: maxKeys, WhenFull: whenFull, m: m}
	th.setup(c.now)
	return th, c
}

var perSecond10 = abi.Limit{Rate: 10, PeriodMillis: 1000}

func TestGCRA(t *testing.T) {
	type step struct {
		advance time.Duration
		tenant  string
		key     string
		cost    int64
		limit   abi.Limit
		want    abi.AllowResponse
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "10 a second: a full burst, then one unit every 100ms",
			steps: []step{
				{cost: 1, want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
				{cost: 9, want: abi.AllowResponse{Allowed: true, Remaining: 0, ResetAfterMillis: 1000}},
				{cost: 1, want: abi.AllowResponse{Remaining: 0, RetryAfterMillis: 100, ResetAfterMillis: 1000}},
				{advance: 99 * time.Millisecond, cost: 1, want: abi.AllowResponse{Remaining: 0, RetryAfterMillis: 1, ResetAfterMillis: 901}},
				{advance: time.Millisecond, cost: 1, want: abi.AllowResponse{Allowed: true, Remaining: 0, ResetAfterMillis: 1000}},
				{advance: 250 * time.Millisecond, cost: 3, want: abi.AllowResponse{Remaining: 2, RetryAfterMillis: 50, ResetAfterMillis: 750}},
				{cost: 2, want: abi.AllowResponse{Allowed: true, Remaining: 0, ResetAfterMillis: 950}},
				{advance: 2 * time.Second, cost: 1, want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
			},
		},
		{
			name: "cost 0 means 1",
			steps: []step{
				{cost: 0, want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
			},
		},
		{
			name: "a burst smaller than the rate",
			steps: []step{
				{cost: 1, limit: abi.Limit{Rate: 10, PeriodMillis: 1000, Burst: 2}, want: abi.AllowResponse{Allowed: true, Remaining: 1, ResetAfterMillis: 100}},
				{cost: 1, limit: abi.Limit{Rate: 10, PeriodMillis: 1000, Burst: 2}, want: abi.AllowResponse{Allowed: true, Remaining: 0, ResetAfterMillis: 200}},
				{cost: 1, limit: abi.Limit{Rate: 10, PeriodMillis: 1000, Burst: 2}, want: abi.AllowResponse{RetryAfterMillis: 100, ResetAfterMillis: 200}},
			},
		},
		{
			name: "a burst larger than the rate",
			steps: []step{
				{cost: 5, limit: abi.Limit{Rate: 1, PeriodMillis: 1000, Burst: 5}, want: abi.AllowResponse{Allowed: true, Remaining: 0, ResetAfterMillis: 5000}},
				{cost: 1, limit: abi.Limit{Rate: 1, PeriodMillis: 1000, Burst: 5}, want: abi.AllowResponse{RetryAfterMillis: 1000, ResetAfterMillis: 5000}},
			},
		},
		{
			name: "keys and tenants are separate buckets",
			steps: []step{
				{cost: 10, want: abi.AllowResponse{Allowed: true, ResetAfterMillis: 1000}},
				{cost: 1, key: "other", want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
				{cost: 1, tenant: "globex", want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
				{cost: 1, want: abi.AllowResponse{RetryAfterMillis: 100, ResetAfterMillis: 1000}},
			},
		},
		{
			name: "long keys that share a prefix are separate buckets",
			steps: []step{
				{cost: 10, key: strings.Repeat("a", 300), want: abi.AllowResponse{Allowed: true, ResetAfterMillis: 1000}},
				{cost: 1, key: strings.Repeat("a", 299) + "b", want: abi.AllowResponse{Allowed: true, Remaining: 9, ResetAfterMillis: 100}},
				{cost: 1, key: strings.Repeat("a", 300), want: abi.AllowResponse{RetryAfterMillis: 100, ResetAfterMillis: 1000}},
			},
		},
		{
			name: "a rate finer than a nanosecond is one unit a nanosecond",
			steps: []step{
				{cost: 1, limit: abi.Limit{Rate: 1 << 40, PeriodMillis: 1}, want: abi.AllowResponse{Allowed: true, Remaining: 1<<40 - 1, ResetAfterMillis: 1}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, clock := newTest(t, 100, WhenFullEvict)
			for i, s := range tt.steps {
				clock.advance(s.advance)
				req := abi.AllowRequest{Tenant: "acme", Key: "login:ip:203.0.113.7", Cost: s.cost, Limit: perSecond10}
				if s.tenant != "" {
					req.Tenant = s.tenant
				}
				if s.key != "" {
					req.Key = s.key
				}
				if s.limit != (abi.Limit{}) {
					req.Limit = s.limit
				}
				got, err := throttle.Check(th.Allow(t.Context(), req))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Errorf("step %d: got %+v\nwant        %+v", i, got, s.want)
				}
			}
		})
	}
}

func TestAllowRefusesBadRequests(t *testing.T) {
	th, _ := newTest(t, 100, WhenFullEvict)
	tests := []struct {
		name   string
		req    abi.AllowRequest
		wantIs error
	}{
		{name: "zero rate", req: abi.AllowRequest{Limit: abi.Limit{PeriodMillis: 1000}}, wantIs: throttle.ErrInvalidLimit},
		{name: "zero period", req: abi.AllowRequest{Limit: abi.Limit{Rate: 1}}, wantIs: throttle.ErrInvalidLimit},
		{name: "negative burst", req: abi.AllowRequest{Limit: abi.Limit{Rate: 1, PeriodMillis: 1000, Burst: -1}}, wantIs: throttle.ErrInvalidLimit},
		{name: "period over 100 years", req: abi.AllowRequest{Limit: abi.Limit{Rate: 1, PeriodMillis: 200 * 365 * 24 * 3600 * 1000}}, wantIs: throttle.ErrInvalidLimit},
		{name: "burst over 100 years", req: abi.AllowRequest{Limit: abi.Limit{Rate: 1, PeriodMillis: 1000, Burst: 1 << 40}}, wantIs: throttle.ErrInvalidLimit},
		{name: "negative cost", req: abi.AllowRequest{Cost: -1, Limit: perSecond10}, wantIs: fault.InvalidRequest},
		{name: "cost over the burst", req: abi.AllowRequest{Cost: 11, Limit: perSecond10}, wantIs: ErrCostExceedsBurst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Tenant, tt.req.Key = "acme", "k"
			_, err := th.Allow(t.Context(), tt.req)
			if !errors.Is(err, tt.wantIs) || fault.CodeOf(err) != fault.CodeInvalidRequest {
				t.Fatalf("error = %v, want %v as an invalid request", err, tt.wantIs)
			}
		})
	}
}

// TestExactUnderConcurrency checks that concurrent requests on one key are
// granted exactly the burst, no more, no less.
func TestExactUnderConcurrency(t *testing.T) {
	th, _ := newTest(t, DefaultMaxKeys, WhenFullEvict)
	limit := abi.Limit{Rate: 100, PeriodMillis: 3_600_000}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				resp, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "hot", Limit: limit})
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Fatalf("%d of 800 requests allowed, want exactly 100", n)
	}
}

func TestMaxKeys(t *testing.T) {
	hourly := abi.Limit{Rate: 1, PeriodMillis: 3_600_000}
	tests := []struct {
		name     string
		whenFull string
		expire   bool // let every bucket fill again before the new key
		wantErr  bool
		wantGone string // the key forgotten to make room
	}{
		{name: "evict forgets the key closest to a full bucket", whenFull: WhenFullEvict, wantGone: "k0"},
		{name: "expired keys make room first", whenFull: WhenFullEvict, expire: true},
		{name: "fail answers unavailable", whenFull: WhenFullFail, wantErr: true},
		{name: "fail still uses expired keys' room", whenFull: WhenFullFail, expire: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, clock := newTest(t, 4, tt.whenFull)
			for i := range 4 {
				clock.advance(time.Millisecond)
				if _, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "k" + strconv.Itoa(i), Limit: hourly}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.expire {
				clock.advance(2 * time.Hour)
			} else {
				clock.advance(2 * time.Second) // past fullSweepGap: the sweep runs and finds nothing
			}
			_, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: "new", Limit: hourly})
			if tt.wantErr {
				if !errors.Is(err, fault.Unavailable) {
					t.Fatalf("error = %v, want an unavailable fault", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(th.shards[0].tat); n > 4 {
				t.Fatalf("%d keys tracked, want at most 4", n)
			}
			wantEvictions := 0.0
			if tt.wantGone != "" {
				wantEvictions = 1
			}
			if got := testutil.ToFloat64(th.m.evictions); got != wantEvictions {
				t.Errorf("evictions = %v, want %v", got, wantEvictions)
			}
			for i := range 4 {
				k := "k" + strconv.Itoa(i)
				_, tracked := th.shards[0].tat[string(appendKey(nil, "acme", k))]
				if wantTracked := !tt.expire && k != tt.wantGone; tracked != wantTracked {
					t.Errorf("%s tracked = %v, want %v", k, tracked, wantTracked)
				}
			}
			if _, tracked := th.shards[0].tat[string(appendKey(nil, "acme", "new"))]; !tracked {
				t.Error("the new key is not tracked")
			}
		})
	}
}

func TestSweep(t *testing.T) {
	th, clock := newTest(t, DefaultMaxKeys, WhenFullEvict)
	for i := range 1000 {
		limit := abi.Limit{Rate: 1, PeriodMillis: int64(1000 + i%2*10_000)}
		if _, err := th.Allow(t.Context(), abi.AllowRequest{Tenant: "acme", Key: strconv.Itoa(i), Limit: limit}); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(5 * time.Second)
	th.sweep()
	if got := testutil.ToFloat64(th.m.keys); got != 500 {
		t.Fatalf("keys after the sweep = %v, want the 500 with a 11s period", got)
	}
}

func TestShards(t *testing.T) {
	tests := []struct {
		maxKeys, wantShards, wantPerShard int
	}{
		{maxKeys: 1, wantShards: 1, wantPerShard: 1},
		{maxKeys: 1000, wantShards: 1, wantPerShard: 1000},
		{maxKeys: 5000, wantShards: 8, wantPerShard: 625},
		{maxKeys: DefaultMaxKeys, wantShards: 256, wantPerShard: 3907},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.maxKeys), func(t *testing.T) {
			th, _ := newTest(t, tt.maxKeys, WhenFullEvict)
			if len(th.shards) != tt.wantShards || th.perShard != tt.wantPerShard {
				t.Errorf("%d shards of %d keys, want %d of %d", len(th.shards), th.perShard, tt.wantShards, tt.wantPerShard)
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	limit := abi.Limit{Rate: 1_000_000_000, PeriodMillis: 1000}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "api:client:" + strconv.Itoa(i)
	}
	b.Run("one_key", func(b *testing.B) {
		th, _ := newTest(b, DefaultMaxKeys, WhenFullEvict)
		th.clock = realClock()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = th.Allow(b.Context(), abi.AllowRequest{Tenant: "acme", Key: "hot", Limit: limit})
			}
		})
	})
	b.Run("10k_keys", func(b *testing.B) {
		th, _ := newTest(b, DefaultMaxKeys, WhenFullEvict)
		th.clock = realClock()
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(7919))
			for pb.Next() {
				i++
				_, _ = th.Allow(b.Context(), abi.AllowRequest{Tenant: "acme", Key: keys[i%len(keys)], Limit: limit})
			}
		})
	})
	b.Run("refused", func(b *testing.B) {
		th, _ := newTest(b, DefaultMaxKeys, WhenFullEvict)
		th.clock = realClock()
		slow := abi.Limit{Rate: 1, PeriodMillis: 3_600_000}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = th.Allow(b.Context(), abi.AllowRequest{Tenant: "acme", Key: "hot", Limit: slow})
			}
		})
	})
}

func realClock() func() int64 {
	epoch := time.Now()
	return func() int64 { return int64(time.Since(epoch)) }
}
