package provision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/provision"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		resp      abi.ProvisionResponse
		err       error
		wantRetry time.Duration
		wantCode  fault.Code
		ok        bool
	}{
		{name: "done", resp: abi.ProvisionResponse{Outcome: abi.ProvisionDone, ExternalID: "x"}, ok: true},
		{name: "skipped", resp: abi.ProvisionResponse{Outcome: abi.ProvisionSkipped}, ok: true},
		{name: "retry", resp: abi.ProvisionResponse{Outcome: abi.ProvisionRetry, RetryAfterMillis: 2000}, wantRetry: 2 * time.Second},
		{name: "negative retry", resp: abi.ProvisionResponse{Outcome: abi.ProvisionRetry, RetryAfterMillis: -1}, wantCode: fault.CodeInternal},
		{name: "permanent failure", resp: abi.ProvisionResponse{Error: &abi.Error{Code: abi.CodeForbidden}}, wantCode: fault.CodeForbidden},
		{name: "unknown outcome", resp: abi.ProvisionResponse{Outcome: "sent"}, wantCode: fault.CodeInternal},
		{name: "go error", err: fault.Conflict, wantCode: fault.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := provision.Check(tt.resp, tt.err)
			switch {
			case tt.ok:
				if err != nil || got.Outcome != tt.resp.Outcome {
					t.Fatalf("Check = %+v, %v", got, err)
				}
			case tt.wantCode != "":
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("code = %q, want %q", fault.CodeOf(err), tt.wantCode)
				}
				if tt.wantCode == fault.CodeInternal && tt.err == nil && !errors.Is(err, provision.ErrInvalidResponse) {
					t.Fatalf("error %v is not ErrInvalidResponse", err)
				}
			default:
				var re *provision.RetryError
				if !errors.As(err, &re) || !errors.Is(err, provision.ErrRetry) || re.After != tt.wantRetry {
					t.Fatalf("Check error = %v, want a retry after %s", err, tt.wantRetry)
				}
			}
		})
	}
}
