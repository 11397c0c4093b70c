// Command entraid is a Latch claim mapper plugin, built to WASM: it
// translates the claims of Microsoft Entra ID (formerly Azure AD) tokens
// into Latch's local dialect. See README.md.
package main

import (
	"github.com/latchid/latch/sdk/claims"
	"github.com/latchid/latch/sdk/plugin"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "entraid", Version: "1.0.0", ConfigSchema: []byte(configSchema)})
	claims.Register("entraid", &mapper{})
}

// main never runs in a reactor guest.
func main() {}
