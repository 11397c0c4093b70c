// Command apikey is a Latch grant type plugin, built to WASM: it exchanges
// a long-lived API key, presented at the token endpoint, for a short-lived
// access token for the key's subject and scopes. The keys are configured
// by their SHA-256 digests, so the configuration holds no usable secret.
// See README.md.
package main

import (
	"github.com/latchid/latch/sdk/grant"
	"github.com/latchid/latch/sdk/plugin"
)

//nolint:gochecknoinits // a WASM guest is a reactor: it registers in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "apikey", Version: "1.0.0", ConfigSchema: []byte(configSchema)})
	grant.Register("apikey", &apiKey{})
}

// main never runs in a reactor guest.
func main() {}
