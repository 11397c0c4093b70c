package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/throttle"
)

const configSchema = `{
  "type": "object",
  "properties": {
    "rules": {"type": "array", "items": {
      "type": "object",
      "properties": {
        "prefix": {"type": "string"},
        "units": {"type": "integer", "minimum": 1},
        "window": {"type": "string"}
      },
      "required": ["prefix", "units", "window"],
      "additionalProperties": false
    }},
    "exempt": {"type": "array", "items": {"type": "string"}}
  },
  "additionalProperties": false
}`

// rule is one quota: Units per Window for keys starting with Prefix.
type rule struct {
	Prefix string `json:"prefix"`
	Units  int64  `json:"units"`
	// Window is a Go duration ("1h", "24h"); windows are aligned on the
	// Unix epoch, so a daily quota resets at midnight UTC.
	Window string `json:"window"`

	window time.Duration
}

type config struct {
	// Rules are tried in order; the first whose prefix matches applies.
	// A key no rule matches gets the request's own limit as a quota of
	// Rate units per Period.
	Rules []rule `json:"rules"`
	// Exempt lists key prefixes that are never throttled.
	Exempt []string `json:"exempt"`
}

// quota is the throttler. Every request carries its instance's
// configuration, parsed once per distinct configuration.
type quota struct {
	configs plugin.Configs[*config]
}

// Configure checks the configuration.
func (q *quota) Configure(raw []byte) error {
	_, err := q.config(raw)
	return err
}

// config returns the parsed configuration raw.
func (q *quota) config(raw []byte) (*config, error) {
	if q.configs.Parse == nil {
		q.configs.Parse = parseConfig
	}
	return q.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		d, err := time.ParseDuration(r.Window)
		if err != nil || d < time.Second || d > 31*24*time.Hour {
			return nil, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("rules[%d].window: want a duration between 1s and 744h, got %q", i, r.Window))
		}
		if r.Units < 1 {
			return nil, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("rules[%d].units: must be at least 1", i))
		}
		r.window = d
	}
	return &c, nil
}

// Allow spends req.Cost units of the key's quota in the current window.
func (q *quota) Allow(req abi.AllowRequest) (abi.AllowResponse, error) {
	cfg, err := q.config(req.Config)
	if err != nil {
		return abi.AllowResponse{}, err
	}
	for _, p := range cfg.Exempt {
		if strings.HasPrefix(req.Key, p) {
			return throttle.Allowed(1 << 62), nil
		}
	}
	units, window := cfg.policy(req)
	if units < 1 || window <= 0 {
		return abi.AllowResponse{}, plugin.ErrInvalidRequest.WithMessage("no quota applies to this key and the request's limit is empty")
	}
	cost := max(req.Cost, 1)
	now := guest.Now()
	start := now.Truncate(window)
	reset := start.Add(window).Sub(now)
	kvKey := "q:" + strconv.FormatInt(start.Unix(), 36) + ":" + req.Key
	if len(kvKey) > 256 {
		return abi.AllowResponse{}, plugin.ErrInvalidRequest.WithMessage("the key is too long")
	}
	var used int64
	v, found, err := host.KVGet(req.Tenant, kvKey)
	if err != nil {
		return abi.AllowResponse{}, err
	}
	if found && len(v) == 8 {
		used = int64(binary.BigEndian.Uint64(v)) //nolint:gosec // G115: written by this plugin, always non-negative
	}
	if used+cost > units {
		resp := throttle.Denied(reset)
		resp.Remaining = max(units-used, 0)
		resp.ResetAfterMillis = reset.Milliseconds()
		return resp, nil
	}
	used += cost
	// The window's counter expires with the window (plus a minute, for
	// clocks a little apart).
	if err := host.KVSet(req.Tenant, kvKey, binary.BigEndian.AppendUint64(nil, uint64(used)), reset+time.Minute); err != nil {
		return abi.AllowResponse{}, err
	}
	resp := throttle.Allowed(units - used)
	resp.ResetAfterMillis = reset.Milliseconds()
	return resp, nil
}

// policy returns the quota of req's key.
func (c *config) policy(req abi.AllowRequest) (int64, time.Duration) {
	for _, r := range c.Rules {
		if strings.HasPrefix(req.Key, r.Prefix) {
			return r.Units, r.window
		}
	}
	return req.Limit.Rate, time.Duration(req.Limit.PeriodMillis) * time.Millisecond
}
