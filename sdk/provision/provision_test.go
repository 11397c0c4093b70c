//go:build !wasip1

package provision_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/provision"
)

func TestPushRoundTrip(t *testing.T) {
	user := abi.ProvisionEvent{ID: "e-1", Tenant: "acme", Op: abi.ProvisionUpdate, Resource: abi.ResourceUser, ResourceID: "u-1", ExternalID: "x-1",
		User: &abi.User{ID: "u-1", Username: "alice", Enabled: true}}
	tests := []struct {
		name        string
		ev          abi.ProvisionEvent
		status      int
		transport   error
		wantOutcome string
		wantRetry   int64
		wantCode    string
	}{
		{name: "done", ev: user, status: 200, wantOutcome: abi.ProvisionDone},
		{name: "group skipped", ev: abi.ProvisionEvent{ID: "e-2", Resource: abi.ResourceGroup, Group: &abi.Group{ID: "g"}}, wantOutcome: abi.ProvisionSkipped},
		{name: "busy target", ev: user, status: 503, wantOutcome: abi.ProvisionRetry, wantRetry: 30000},
		{name: "refused change", ev: user, status: 400, wantCode: abi.CodeInvalidRequest},
		{name: "transport failure", ev: user, transport: plugin.ErrTimeout.WithMessage("no answer in 5s"), wantCode: abi.CodeTimeout},
		{name: "other handler error", ev: user, transport: errors.New("dns"), wantCode: abi.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			h.HandleHTTP(func(req abi.HTTPRequest) (abi.HTTPResponse, error) {
				if req.Headers["Idempotency-Key"][0] != tt.ev.ID {
					t.Errorf("headers %v", req.Headers)
				}
				return abi.HTTPResponse{Status: tt.status, Body: []byte(`{"id":"x-1"}`)}, tt.transport
			})
			resp, err := h.Provision("webhook", tt.ev)
			var pe *plugin.Error
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Errorf("error %v, want code %s", err, tt.wantCode)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case resp.Outcome != tt.wantOutcome || resp.RetryAfterMillis != tt.wantRetry:
				t.Errorf("response %+v", resp)
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	if d := provision.Done("x"); d.Outcome != abi.ProvisionDone || d.ExternalID != "x" {
		t.Errorf("Done = %+v", d)
	}
	if s := provision.Skipped(); s.Outcome != abi.ProvisionSkipped {
		t.Errorf("Skipped = %+v", s)
	}
	if r := provision.Retry(time.Minute); r.Outcome != abi.ProvisionRetry || r.RetryAfterMillis != 60000 {
		t.Errorf("Retry = %+v", r)
	}
}
