package main

import (
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

const cfg = `{"rules":[{"prefix":"api:client:","units":3,"window":"1h"}],"exempt":["api:client:internal-"]}`

func allow(t *testing.T, h *plugintest.Harness, key string) abi.AllowResponse {
	t.Helper()
	resp, err := h.Allow("quota", abi.AllowRequest{Tenant: "acme", Key: key, Cost: 1, Limit: abi.Limit{Rate: 2, PeriodMillis: 60_000}})
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return resp
}

func TestQuota(t *testing.T) {
	h := plugintest.New(t)
	h.SetNow(time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC))
	if err := h.Configure("quota", []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := allow(t, h, "api:client:svc-a"); !r.Allowed || r.Remaining != int64(2-i) {
			t.Fatalf("call %d: %+v", i+1, r)
		}
	}
	r := allow(t, h, "api:client:svc-a")
	if r.Allowed || r.RetryAfterMillis != (30*time.Minute).Milliseconds() {
		t.Fatalf("4th call in the hour: %+v, want refused until 11:00", r)
	}
	// Another key has its own quota; an exempt key has none.
	if r := allow(t, h, "api:client:svc-b"); !r.Allowed {
		t.Fatalf("other key refused: %+v", r)
	}
	for range 10 {
		if r := allow(t, h, "api:client:internal-batch"); !r.Allowed {
			t.Fatalf("exempt key refused: %+v", r)
		}
	}
	// A key no rule matches uses the request's limit: 2 a minute.
	allow(t, h, "login:ip:1")
	allow(t, h, "login:ip:1")
	if r := allow(t, h, "login:ip:1"); r.Allowed {
		t.Fatalf("request limit not applied: %+v", r)
	}
	// The next window starts afresh.
	h.SetNow(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC))
	if r := allow(t, h, "api:client:svc-a"); !r.Allowed {
		t.Fatalf("new window refused: %+v", r)
	}
}

func TestConfigureRefuses(t *testing.T) {
	for _, c := range []string{`{"rules":[{"prefix":"a","units":1,"window":"soon"}]}`, `{"rules":[{"prefix":"a","units":0,"window":"1h"}]}`, `{"limits":[]}`} {
		h := plugintest.New(t)
		if err := h.Configure("quota", []byte(c)); !errors.Is(err, plugin.ErrInvalidRequest) {
			t.Errorf("Configure(%s) = %v", c, err)
		}
	}
}
