// Command webhook is a Latch provisioner plugin, built to WASM: it posts
// every identity change (user or group created, updated, deleted) as a
// JSON document to an HTTPS endpoint, signed with HMAC-SHA256 so that the
// receiver can tell it came from Latch. See README.md.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/provision"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{
		Name:    "webhook",
		Version: "1.0.0",
		Capabilities: []abi.CapabilityRequest{
			{Name: abi.CapabilityHTTP},
			{Name: abi.CapabilitySecrets},
			{Name: abi.CapabilityClock},
		},
		ConfigSchema: []byte(configSchema),
	})
	provision.Register("webhook", &webhook{})
}

// main never runs in a reactor guest.
func main() {}
