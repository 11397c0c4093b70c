// Package local is the throttle.local extension: an in-process rate limiter
// implementing the generic cell rate algorithm (GCRA, ITU-T I.371 annex A,
// the "virtual scheduling" form). Its counters live in this node's memory,
// so with several nodes each enforces its own share; use a distributed
// throttler (Redis) when the limit must hold across nodes.
//
// # Algorithm
//
// A Limit of Rate units per Period with bursts of Burst units gives an
// emission interval T = Period/Rate (the time one unit takes to come back)
// and a tolerance τ = Burst·T (how far ahead of schedule a key may run).
// Each key keeps one number, its theoretical arrival time (TAT): when its
// bucket will be full again. A request for n units at time now is granted
// when
//
//	max(TAT, now) + n·T − τ ≤ now
//
// and then sets TAT = max(TAT, now) + n·T; a refused request changes
// nothing. So a key is one int64, a decision is a few additions under one
// mutex, and a key whose TAT has passed holds no information (its bucket is
// full) and is forgotten.
//
// # Why not a library
//
// The maintained Go GCRA implementation, github.com/throttled/throttled/v2
// (v2.15.0), binds each limiter to one fixed quota and reaches its store
// through a compare-and-swap loop built for Redis; a Limit that arrives
// with every request would need one limiter per distinct Limit, its new
// keys ignore the requested quantity, and it refuses quotas whose period
// does not divide evenly by the rate. Other GCRA packages are
// unmaintained. The algorithm is the thirty lines of Allow below.
//
// # Memory
//
// Keys live in up to 256 shards, each a map under its own mutex, chosen by
// a seeded hash of the key, so decisions on different keys rarely contend
// and decisions on one key are exact under any concurrency. A background
// sweep forgets keys whose bucket is full again. At most max_keys keys are
// kept (each shard holds its share); when a new key finds its shard full
// and nothing has expired, the when_full policy applies: "evict" forgets,
// among eight sampled keys of the shard, the one closest to a full bucket
// (it loses the least), "fail" answers an unavailable error so that the
// kernel applies the policy's fail mode (open or closed).
package local

import (
	"context"
	"crypto/sha256"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/throttle"
)

// ID is the module id.
const ID extension.ID = "throttle.local"

// Defaults and values of the configuration fields.
const (
	// DefaultMaxKeys is max_keys when unset: about 100 MB of keys of 40
	// bytes.
	DefaultMaxKeys = 1_000_000
	// DefaultSweepIntervalMillis is sweep_interval_millis when unset.
	DefaultSweepIntervalMillis = 60_000
	// WhenFullEvict makes a new key evict a sampled key (the default).
	WhenFullEvict = "evict"
	// WhenFullFail makes a new key fail with fault.Unavailable.
	WhenFullFail = "fail"
)

const (
	maxShards = 256
	// minShardKeys is the fewest keys per shard worth splitting for.
	minShardKeys = 1024
	// evictSample is how many keys an eviction compares.
	evictSample = 8
	// maxKeyLength is the longest key kept as it is; longer keys are
	// replaced by their SHA-256, so that a key built from a client's
	// header cannot make the map hold megabytes.
	maxKeyLength = 256
	// maxSpan bounds the period and Burst·T, in nanoseconds (about 100
	// years), so that TAT arithmetic cannot overflow an int64.
	maxSpan = int64(100 * 365 * 24 * time.Hour)
	// fullSweepGap is the least time between two sweeps of one shard
	// made because it was full, so that a flood of new keys does not make
	// every request scan the shard.
	fullSweepGap = int64(time.Second)
)

// ErrCostExceedsBurst means a request asks for more units than the limit's
// burst: it could never be granted. It is wrapped in a
// fault.InvalidRequest.
var ErrCostExceedsBurst = errors.New("cost exceeds burst")

//go:embed config.schema.json
var configSchema []byte

// Module returns the throttle.local module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindThrottler,
		New:          func() any { return new(Throttler) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "In-process GCRA rate limiter with bounded memory.",
	}
}

// Throttler is a throttle.local instance. Its exported fields are its
// configuration (see config.schema.json).
type Throttler struct {
	// MaxKeys is the most keys tracked at once.
	MaxKeys int `json:"max_keys,omitempty"`
	// SweepIntervalMillis is how often expired keys are forgotten.
	SweepIntervalMillis int64 `json:"sweep_interval_millis,omitempty"`
	// WhenFull is WhenFullEvict or WhenFullFail.
	WhenFull string `json:"when_full,omitempty"`

	shards   []shard
	mask     uint64
	perShard int
	seed     maphash.Seed
	// clock returns monotonic nanoseconds since provisioning.
	clock func() int64
	m     *metrics

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type shard struct {
	mu sync.Mutex
	// tat maps a key to its theoretical arrival time. Values are
	// pointers so that a decision on a known key updates in place without
	// re-inserting (and re-allocating) the key.
	tat       map[string]*int64
	lastSweep int64
	_         [40]byte // keeps neighbouring shards' mutexes off one cache line
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// Provision fills in defaults, builds the shards and starts the sweep.
func (t *Throttler) Provision(ctx context.Context, env extension.Env) error {
	if t.MaxKeys == 0 {
		t.MaxKeys = DefaultMaxKeys
	}
	if t.SweepIntervalMillis == 0 {
		t.SweepIntervalMillis = DefaultSweepIntervalMillis
	}
	if t.WhenFull == "" {
		t.WhenFull = WhenFullEvict
	}
	m, err := newMetrics(env.Metrics)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	t.m = m
	epoch := time.Now()
	t.setup(func() int64 { return int64(time.Since(epoch)) })
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.sweepEvery(time.Duration(t.SweepIntervalMillis) * time.Millisecond)
	return nil
}

// setup builds the shards, a power of two of them, as few as keep
// minShardKeys keys each (at most maxShards); tests call it with a fake
// clock.
func (t *Throttler) setup(clock func() int64) {
	t.mask = 0
	for n := 1; n < maxShards && n*minShardKeys < t.MaxKeys; n *= 2 {
		t.mask = t.mask<<1 | 1
	}
	t.shards = make([]shard, t.mask+1)
	for i := range t.shards {
		t.shards[i].tat = make(map[string]*int64)
	}
	t.perShard = (t.MaxKeys + len(t.shards) - 1) / len(t.shards)
	t.seed = maphash.MakeSeed()
	t.clock = clock
}

// Close stops the sweep. It copes with a Throttler that was never
// provisioned.
func (t *Throttler) Close(ctx context.Context) error {
	t.closeOnce.Do(func() {
		if t.stop != nil {
			close(t.stop)
			<-t.done
		}
	})
	return nil
}

// Allow decides whether req.Key of req.Tenant may spend req.Cost units now
// under req.Limit, and spends them when it may.
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
	if t.shards == nil {
		return abi.AllowResponse{}, fault.Internal.WithCause(errors.New("allowing: throttler not provisioned"))
	}

	bp := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(bp)
	key := appendKey((*bp)[:0], req.Tenant, req.Key)
	*bp = key
	sh := &t.shards[maphash.Bytes(t.seed, key)&t.mask]

	now := t.clock()
	sh.mu.Lock()
	p := sh.tat[string(key)] // no allocation: a lookup
	tat := now
	if p != nil && *p > now {
		tat = *p
	}
	next := tat + cost*T
	if allowAt := next - tau; allowAt > now {
		sh.mu.Unlock()
		t.m.refused.Inc()
		return abi.AllowResponse{
			Allowed:          false,
			Remaining:        max(0, (tau-(tat-now))/T),
			RetryAfterMillis: ceilMillis(allowAt - now),
			ResetAfterMillis: ceilMillis(tat - now),
		}, nil
	}
	if p != nil {
		*p = next
	} else {
		if len(sh.tat) >= t.perShard && !t.makeRoom(sh, now) {
			sh.mu.Unlock()
			return abi.AllowResponse{}, fault.Unavailable.WithMessage("rate limiter is tracking too many keys").
				WithCause(fmt.Errorf("allowing: shard full with %d keys and when_full is %q", t.perShard, t.WhenFull))
		}
		np := new(int64) // not &next: that would move next to the heap on every call
		*np = next
		sh.tat[string(key)] = np
	}
	sh.mu.Unlock()
	t.m.allowed.Inc()
	return abi.AllowResponse{
		Allowed:          true,
		Remaining:        max(0, (tau-(next-now))/T),
		ResetAfterMillis: ceilMillis(next - now),
	}, nil
}

// schedule returns the emission interval T and the tolerance τ = Burst·T of
// l, in nanoseconds. T is rounded down to whole nanoseconds (at least 1).
func schedule(l abi.Limit) (T, tau int64, err error) {
	if err := throttle.ValidateLimit(l); err != nil {
		return 0, 0, err
	}
	if l.PeriodMillis > maxSpan/int64(time.Millisecond) {
		return 0, 0, fmt.Errorf("validating limit: %w: period_millis must be at most %d", throttle.ErrInvalidLimit, maxSpan/int64(time.Millisecond))
	}
	T = max(1, l.PeriodMillis*int64(time.Millisecond)/l.Rate)
	burst := l.Burst
	if burst == 0 {
		burst = l.Rate
	}
	if burst > maxSpan/T {
		return 0, 0, fmt.Errorf("validating limit: %w: burst × period / rate must be at most 100 years", throttle.ErrInvalidLimit)
	}
	return T, burst * T, nil
}

// appendKey appends the map key of (tenant, key) to b: the tenant, a NUL
// (tenant names cannot hold one), then 'k' and the key, or 'h' and the
// SHA-256 of the key when it is long.
func appendKey(b []byte, tenant, key string) []byte {
	b = append(b, tenant...)
	if len(key) <= maxKeyLength {
		b = append(b, 0, 'k')
		return append(b, key...)
	}
	sum := sha256.Sum256([]byte(key))
	b = append(b, 0, 'h')
	return append(b, sum[:]...)
}

// makeRoom frees a slot in the full shard sh (locked) for a new key and
// reports whether it did: by forgetting expired keys (at most once per
// fullSweepGap), then, under WhenFullEvict, by evicting the sampled key
// whose bucket is closest to full.
func (t *Throttler) makeRoom(sh *shard, now int64) bool {
	if now-sh.lastSweep >= fullSweepGap {
		sh.lastSweep = now
		for k, p := range sh.tat {
			if *p <= now {
				delete(sh.tat, k)
			}
		}
		if len(sh.tat) < t.perShard {
			return true
		}
	}
	if t.WhenFull != WhenFullEvict {
		return false
	}
	var (
		victim string
		oldest int64
		n      int
	)
	for k, p := range sh.tat { // map iteration starts at a random key
		if n == 0 || *p < oldest {
			victim, oldest = k, *p
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(sh.tat, victim)
	t.m.evictions.Inc()
	return true
}

// sweepEvery forgets expired keys every interval until Close.
func (t *Throttler) sweepEvery(interval time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.sweep()
		}
	}
}

// sweep forgets every key whose bucket is full again and updates the keys
// gauge. It holds one shard's lock at a time.
func (t *Throttler) sweep() {
	total := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		now := t.clock()
		for k, p := range sh.tat {
			if *p <= now {
				delete(sh.tat, k)
			}
		}
		total += len(sh.tat)
		sh.mu.Unlock()
	}
	t.m.keys.Set(float64(total))
}

// ceilMillis rounds nanoseconds up to whole milliseconds, so that a client
// that waits the answer is never early.
func ceilMillis(ns int64) int64 {
	return (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// metrics are the instance's own metrics (the kernel counts the calls).
type metrics struct {
	allowed, refused prometheus.Counter
	evictions        prometheus.Counter
	keys             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	decisions, err := extension.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "throttle_local", Name: "decisions_total",
		Help: "Rate limit decisions by result (allowed, refused).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	evictions, err := extension.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "latch", Subsystem: "throttle_local", Name: "evictions_total",
		Help: "Keys forgotten before their bucket was full because max_keys was reached.",
	}))
	if err != nil {
		return nil, err
	}
	keys, err := extension.RegisterCollector(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "latch", Subsystem: "throttle_local", Name: "keys",
		Help: "Keys tracked, as of the last sweep.",
	}))
	if err != nil {
		return nil, err
	}
	return &metrics{
		allowed:   decisions.WithLabelValues("allowed"),
		refused:   decisions.WithLabelValues("refused"),
		evictions: evictions,
		keys:      keys,
	}, nil
}

var (
	_ throttle.Throttler    = (*Throttler)(nil)
	_ extension.Provisioner = (*Throttler)(nil)
	_ extension.Cleaner     = (*Throttler)(nil)
)
