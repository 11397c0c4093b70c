package claims_test

import (
	"errors"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/fault"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		resp     abi.MapResponse
		err      error
		wantLen  int
		wantCode fault.Code
	}{
		{name: "claims", resp: abi.MapResponse{Claims: map[string]any{"email": "a@b"}}, wantLen: 1},
		{name: "all dropped", resp: abi.MapResponse{Claims: map[string]any{}}, wantLen: 0},
		{name: "absent claims mean all dropped", resp: abi.MapResponse{}, wantLen: 0},
		{name: "wire error", resp: abi.MapResponse{Error: &abi.Error{Code: abi.CodeInvalidRequest}}, wantCode: fault.CodeInvalidRequest},
		{name: "go error", err: fault.Unavailable, wantCode: fault.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := claims.Check(tt.resp, tt.err)
			if tt.wantCode != "" {
				if fault.CodeOf(err) != tt.wantCode {
					t.Fatalf("code = %q, want %q (%v)", fault.CodeOf(err), tt.wantCode, err)
				}
				if tt.wantCode == fault.CodeInternal && !errors.Is(err, claims.ErrInvalidResponse) {
					t.Fatalf("error %v is not ErrInvalidResponse", err)
				}
				return
			}
			if err != nil || got == nil || len(got) != tt.wantLen {
				t.Fatalf("Check = %v, %v", got, err)
			}
		})
	}
}
