// Command restdir is a Latch user store plugin, built to WASM: it reads
// users from a REST directory service (an HR system, a legacy user
// database behind a small API) over the host's outbound HTTP, and checks
// passwords there, so the passwords never reach Latch's store. See
// README.md.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/userstore"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{
		Name:         "restdir",
		Version:      "1.0.0",
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP}, {Name: abi.CapabilitySecrets}},
		ConfigSchema: []byte(configSchema),
	})
	userstore.Register("restdir", &directory{})
}

// main never runs in a reactor guest.
func main() {}
