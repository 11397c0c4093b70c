// Command ipallow is a Latch authenticator plugin, built to WASM or, from
// the same code, as a native (go-plugin) binary: a "network step" that
// confirms the subject established by earlier steps when the client's IP
// address falls in one of the configured CIDR ranges.
// See README.md.
package main

import (
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/plugin"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "ipallow", Version: "1.0.0", ConfigSchema: []byte(configSchema)})
	authn.Register("ipallow", &ipAllow{})
}
