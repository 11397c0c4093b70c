package throttle_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/throttle"
)

func TestValidateLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit abi.Limit
		ok    bool
	}{
		{"valid", abi.Limit{Rate: 10, PeriodMillis: 1000}, true},
		{"valid with burst", abi.Limit{Rate: 10, PeriodMillis: 1000, Burst: 20}, true},
		{"zero rate", abi.Limit{PeriodMillis: 1000}, false},
		{"zero period", abi.Limit{Rate: 1}, false},
		{"negative burst", abi.Limit{Rate: 1, PeriodMillis: 1, Burst: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := throttle.ValidateLimit(tt.limit)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, throttle.ErrInvalidLimit)) {
				t.Fatalf("ValidateLimit = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestCheckAndRefusal(t *testing.T) {
	tests := []struct {
		name      string
		resp      abi.AllowResponse
		err       error
		wantCode  fault.Code
		wantRetry time.Duration
		refused   bool
	}{
		{name: "allowed", resp: abi.AllowResponse{Allowed: true, Remaining: 3}},
		{name: "refused", resp: abi.AllowResponse{RetryAfterMillis: 1500}, refused: true, wantRetry: 1500 * time.Millisecond},
		{name: "negative remaining", resp: abi.AllowResponse{Allowed: true, Remaining: -1}, wantCode: fault.CodeInternal},
		{name: "wire error", resp: abi.AllowResponse{Error: &abi.Error{Code: abi.CodeUnavailable}}, wantCode: fault.CodeUnavailable},
		{name: "go error", err: errors.New("redis down"), wantCode: fault.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := throttle.Check(tt.resp, tt.err)
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := throttle.Refusal(got)
			if (f != nil) != tt.refused {
				t.Fatalf("Refusal = %v, want refused=%v", f, tt.refused)
			}
			if f != nil && (f.Code != fault.CodeRateLimited || f.RetryAfter != tt.wantRetry) {
				t.Fatalf("Refusal = %+v", f)
			}
		})
	}
}
