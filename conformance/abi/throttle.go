package abi

import (
	"errors"
	"sync/atomic"
	"testing"

	latchabi "github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/throttle"
)

// ThrottlerCases are what a throttler under test must satisfy.
type ThrottlerCases struct {
	// Tenant is the tenant of every request.
	Tenant string
	// Limit is the limit of every request; choose a slow rate (a few per
	// minute) so that no unit comes back during the test.
	Limit latchabi.Limit
	// Allowance is how many requests of cost 1 the limit admits on a fresh
	// key before it refuses one (for a GCRA limiter, the burst).
	Allowance int
	// NeverRefuses declares a throttler that allows everything (a no-op, an
	// allow-list): the suite then checks that it admits twice the
	// Allowance instead of refusing past it.
	NeverRefuses bool
}

// RunThrottler runs the throttler suite: every answer passes
// throttle.Check; a fresh key is allowed Allowance times, then refused
// with a retry-after (unless NeverRefuses); keys are independent;
// concurrent calls on one key admit exactly Allowance; the request is not
// modified; and a cancelled context is honoured within CancelWithin.
// newInstance is called once per subtest, and every subtest uses its own
// keys.
func RunThrottler(t *testing.T, newInstance func(t *testing.T) throttle.Throttler, cases ThrottlerCases) {
	t.Helper()
	if cases.Allowance < 1 {
		t.Fatal("ThrottlerCases.Allowance must be at least 1")
	}
	allow := func(t *testing.T, th throttle.Throttler, key string) latchabi.AllowResponse {
		t.Helper()
		req := latchabi.AllowRequest{Tenant: cases.Tenant, Key: key, Cost: 1, Limit: cases.Limit}
		before := req
		resp, err := throttle.Check(th.Allow(t.Context(), req))
		sameRequest(t, "request", before, req)
		if err != nil {
			t.Fatalf("Allow(%q): %v (every answer must pass throttle.Check)", key, err)
		}
		return resp
	}
	// spend allows key Allowance times, checking each is allowed.
	spend := func(t *testing.T, th throttle.Throttler, key string) {
		t.Helper()
		for i := range cases.Allowance {
			if resp := allow(t, th, key); !resp.Allowed {
				t.Fatalf("Allow(%q) %d of %d within the limit: refused (retry after %d ms)", key, i+1, cases.Allowance, resp.RetryAfterMillis)
			}
		}
	}

	t.Run("allows within the limit", func(t *testing.T) {
		spend(t, newInstance(t), "conformance:within")
	})
	t.Run("refuses past the limit", func(t *testing.T) {
		th := newInstance(t)
		key := "conformance:past"
		spend(t, th, key)
		resp := allow(t, th, key)
		if cases.NeverRefuses {
			if !resp.Allowed {
				t.Fatalf("a throttler declared NeverRefuses refused (retry after %d ms)", resp.RetryAfterMillis)
			}
			return
		}
		if resp.Allowed {
			t.Fatalf("Allow %d past an allowance of %d: allowed (remaining %d)", cases.Allowance+1, cases.Allowance, resp.Remaining)
		}
		if resp.RetryAfterMillis <= 0 {
			t.Fatalf("a refusal without a retry-after: %+v", resp)
		}
		if err := throttle.Refusal(resp); !errors.Is(err, fault.RateLimited) {
			t.Fatalf("throttle.Refusal = %v, want a rate-limited fault", err)
		}
	})
	t.Run("independent keys", func(t *testing.T) {
		th := newInstance(t)
		spend(t, th, "conformance:spent")
		if !cases.NeverRefuses {
			if resp := allow(t, th, "conformance:spent"); resp.Allowed {
				t.Fatal("the spent key was allowed past its limit")
			}
		}
		spend(t, th, "conformance:fresh")
	})
	t.Run("concurrent calls", func(t *testing.T) {
		th := newInstance(t)
		var allowed atomic.Int64
		calls := 2 * cases.Allowance
		parallel(calls, func(int) {
			resp, err := throttle.Check(th.Allow(t.Context(), latchabi.AllowRequest{Tenant: cases.Tenant, Key: "conformance:concurrent", Cost: 1, Limit: cases.Limit}))
			if err != nil {
				t.Errorf("concurrent Allow: %v", err)
				return
			}
			if resp.Allowed {
				allowed.Add(1)
			}
		})
		want := int64(cases.Allowance)
		if cases.NeverRefuses {
			want = int64(calls)
		}
		if got := allowed.Load(); got != want {
			t.Fatalf("%d concurrent calls on one key: %d allowed, want %d", calls, got, want)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		th := newInstance(t)
		ctx := cancelled(t)
		var err error
		callWithin(t, CancelWithin, func() {
			_, err = throttle.Check(th.Allow(ctx, latchabi.AllowRequest{Tenant: cases.Tenant, Key: "conformance:cancelled", Cost: 1, Limit: cases.Limit}))
		})
		_ = err // failing or answering are both right; hanging is not
		if resp := allow(t, th, "conformance:after-cancel"); !resp.Allowed {
			t.Fatal("a fresh key was refused after a cancelled call")
		}
	})
}
