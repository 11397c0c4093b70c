//go:build !wasip1

package provision_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
	"github.com/latchid/latch/sdk/provision"
)

// webhook posts user changes to a directory's webhook and keeps the id the
// directory answers with.
type webhook struct{}

func (webhook) Push(ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	if ev.Resource != abi.ResourceUser {
		return provision.Skipped(), nil
	}
	body, err := json.Marshal(map[string]string{"op": ev.Op, "id": ev.ResourceID, "external_id": ev.ExternalID})
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	resp, err := host.HTTP(abi.HTTPRequest{
		Method:  "POST",
		URL:     "https://hooks.example.com/users",
		Headers: map[string][]string{"Content-Type": {"application/json"}, "Idempotency-Key": {ev.ID}},
		Body:    body,
	})
	switch {
	case err != nil:
		return abi.ProvisionResponse{}, err
	case resp.Status == 429 || resp.Status >= 500:
		return provision.Retry(30 * time.Second), nil
	case resp.Status >= 300:
		return abi.ProvisionResponse{}, plugin.ErrInvalidRequest.WithMessage("the directory refused the change")
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return abi.ProvisionResponse{}, err
	}
	return provision.Done(out.ID), nil
}

var _ provision.Provisioner = webhook{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{
		Name:    "webhook-provisioner",
		Version: "1.0.0",
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityHTTP, Hosts: []string{"hooks.example.com"}},
		},
	})
	provision.Register("webhook", webhook{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)
	h.HandleHTTP(func(req abi.HTTPRequest) (abi.HTTPResponse, error) {
		fmt.Println(req.Method, req.URL, string(req.Body))
		return abi.HTTPResponse{Status: 201, Body: []byte(`{"id":"00u1ab"}`)}, nil
	})
	resp, err := h.Provision("webhook", abi.ProvisionEvent{
		ID: "e-19", Tenant: "acme", Op: abi.ProvisionCreate, Resource: abi.ResourceUser, ResourceID: "u-42",
	})
	fmt.Println(resp.Outcome, resp.ExternalID, err)
	// Output:
	// POST https://hooks.example.com/users {"external_id":"","id":"u-42","op":"create"}
	// done 00u1ab <nil>
}
