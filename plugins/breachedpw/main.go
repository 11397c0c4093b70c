// Command breachedpw is a Latch authenticator plugin, built to WASM: a
// login step that refuses a password found in a breached-password corpus,
// asked with a k-anonymity range query so that neither the password nor
// its full hash leaves Latch. See README.md.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/plugin"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{
		Name:         "breachedpw",
		Version:      "1.0.0",
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP}, {Name: abi.CapabilityLog}},
		ConfigSchema: []byte(configSchema),
	})
	authn.Register("breachedpw", &checker{})
}

// main never runs in a reactor guest.
func main() {}
