// Command quota is a Latch throttler plugin, built to WASM: fixed-window
// quotas (so many units per hour, per day) chosen by key prefix, kept in
// the plugin's key-value space so that every instance and every node
// shares them, with exempt keys. See README.md.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/throttle"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{
		Name:         "quota",
		Version:      "1.0.0",
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityKV}, {Name: abi.CapabilityClock}},
		ConfigSchema: []byte(configSchema),
	})
	throttle.Register("quota", &quota{})
}

// main never runs in a reactor guest.
func main() {}
