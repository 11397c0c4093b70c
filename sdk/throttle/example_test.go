//go:build !wasip1

package throttle_test

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/throttle"
)

// fixedWindow counts units per key and window in the host's key-value
// space, which every instance of the module shares.
type fixedWindow struct{}

func (fixedWindow) Allow(req abi.AllowRequest) (abi.AllowResponse, error) {
	period := time.Duration(req.Limit.PeriodMillis) * time.Millisecond
	if period <= 0 || req.Limit.Rate <= 0 {
		return abi.AllowResponse{}, plugin.ErrInvalidRequest.WithMessage("limit needs a rate and a period")
	}
	cost := max(req.Cost, 1)
	now := guest.Now()
	window := now.Truncate(period)
	key := req.Key + "@" + strconv.FormatInt(window.UnixMilli(), 10)

	var used int64
	if v, found, err := host.KVGet(req.Tenant, key); err != nil {
		return abi.AllowResponse{}, err
	} else if found && len(v) == 8 {
		used = int64(binary.BigEndian.Uint64(v)) //nolint:gosec // G115: a count this module wrote
	}
	if used+cost > req.Limit.Rate {
		return throttle.Denied(window.Add(period).Sub(now)), nil
	}
	used += cost
	if err := host.KVSet(req.Tenant, key, binary.BigEndian.AppendUint64(nil, uint64(used)), period); err != nil {
		return abi.AllowResponse{}, err
	}
	return throttle.Allowed(req.Limit.Rate - used), nil
}

var _ throttle.Throttler = fixedWindow{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{
		Name:    "window-throttle",
		Version: "1.0.0",
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityKV},
			{Name: abi.CapabilityClock},
		},
	})
	throttle.Register("fixed_window", fixedWindow{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)
	h.SetNow(time.Date(2025, 1, 1, 12, 0, 10, 0, time.UTC))
	req := abi.AllowRequest{Tenant: "acme", Key: "login:ip:203.0.113.7", Limit: abi.Limit{Rate: 2, PeriodMillis: 60_000}}
	for range 3 {
		resp, _ := h.Allow("fixed_window", req)
		fmt.Println(resp.Allowed, resp.Remaining, resp.RetryAfterMillis)
	}
	// Output:
	// true 1 0
	// true 0 0
	// false 0 50000
}
