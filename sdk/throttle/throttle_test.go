//go:build !wasip1

package throttle_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/throttle"
)

func TestAllowRoundTrip(t *testing.T) {
	h := plugintest.New(t)
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	h.SetNow(start)
	req := abi.AllowRequest{Tenant: "acme", Key: "k", Cost: 3, Limit: abi.Limit{Rate: 5, PeriodMillis: 1000}}
	steps := []struct {
		name       string
		at         time.Duration
		allowed    bool
		remaining  int64
		retryAfter int64
	}{
		{"first spend", 0, true, 2, 0},
		{"over the limit", 100 * time.Millisecond, false, 0, 900},
		{"next window", time.Second, true, 2, 0},
	}
	for _, s := range steps {
		h.SetNow(start.Add(s.at))
		resp, err := h.Allow("fixed_window", req)
		if err != nil || resp.Allowed != s.allowed || resp.Remaining != s.remaining || resp.RetryAfterMillis != s.retryAfter {
			t.Errorf("%s: %+v, %v", s.name, resp, err)
		}
	}
	if _, ok := h.KV("acme", "k@1735732800000"); ok {
		t.Error("the first window's counter outlived its TTL")
	}
	if v, ok := h.KV("acme", "k@1735732801000"); !ok || len(v) != 8 || v[7] != 3 {
		t.Errorf("the second window's counter is %v, %v; want 3", v, ok)
	}
}

func TestAllowError(t *testing.T) {
	h := plugintest.New(t)
	resp, err := h.Allow("fixed_window", abi.AllowRequest{Tenant: "acme", Key: "k"})
	if !errors.Is(err, plugin.ErrInvalidRequest) || resp.Error == nil || resp.Allowed {
		t.Errorf("a limit without a rate: %+v, %v", resp, err)
	}
}

func TestBuilders(t *testing.T) {
	if a := throttle.Allowed(4); !a.Allowed || a.Remaining != 4 {
		t.Errorf("Allowed = %+v", a)
	}
	if d := throttle.Denied(1500 * time.Millisecond); d.Allowed || d.RetryAfterMillis != 1500 {
		t.Errorf("Denied = %+v", d)
	}
}
