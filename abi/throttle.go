package abi

import "encoding/json"

// Limit is a throttling policy: Rate units per Period, with bursts of up to
// Burst units.
//
// Encoding example (100 requests a minute, bursts of 20):
//
//	{"rate":100,"period_millis":60000,"burst":20}
type Limit struct {
	// Rate is how many units are allowed per Period.
	Rate int64 `json:"rate" wire:"1"`
	// PeriodMillis is the length of the period in milliseconds.
	PeriodMillis int64 `json:"period_millis" wire:"2"`
	// Burst is how many units may be spent at once; 0 means Rate.
	Burst int64 `json:"burst,omitempty" wire:"3"`
}

// AllowRequest asks a throttler whether Key may spend Cost units now under
// Limit. A granted request spends the units; a refused one spends nothing.
//
// Encoding example:
//
//	{"tenant":"acme","key":"login:ip:203.0.113.7","cost":1,
//	 "limit":{"rate":10,"period_millis":60000}}
type AllowRequest struct {
	// Tenant is the name of the tenant.
	Tenant string `json:"tenant" wire:"1"`
	// Key names the bucket ("api:client:svc-a", "login:user:alice").
	Key string `json:"key" wire:"2"`
	// Cost is how many units this request spends; 0 means 1.
	Cost int64 `json:"cost,omitempty" wire:"3"`
	// Limit is the policy for Key.
	Limit Limit `json:"limit" wire:"4"`
	// Config is this extension instance's configuration for the tenant.
	Config json.RawMessage `json:"config,omitempty" wire:"5"`
}

// AllowResponse is a throttler's verdict.
//
// Encoding examples:
//
//	{"allowed":true,"remaining":9,"reset_after_millis":6000}
//	{"allowed":false,"remaining":0,"retry_after_millis":4200,"reset_after_millis":60000}
type AllowResponse struct {
	// Allowed reports whether the units were granted.
	Allowed bool `json:"allowed" wire:"1"`
	// Remaining is how many units are left right now.
	Remaining int64 `json:"remaining" wire:"2"`
	// RetryAfterMillis is how long to wait until Cost units would be
	// granted; set when not Allowed (the Retry-After header).
	RetryAfterMillis int64 `json:"retry_after_millis,omitempty" wire:"3"`
	// ResetAfterMillis is how long until the bucket is full again.
	ResetAfterMillis int64 `json:"reset_after_millis,omitempty" wire:"4"`
	// Error says why the throttler could not decide. The kernel then
	// applies the policy's fail mode (open or closed).
	Error *Error `json:"error,omitempty" wire:"5"`
}
