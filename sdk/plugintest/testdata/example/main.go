// Command example is a Latch WASM guest built by TestExampleBuildsForWASM:
// a magic-word authenticator that counts attempts in the host's key-value
// space. It proves the SDK compiles for GOOS=wasip1 with
// -buildmode=c-shared, and that a module imports only the host functions
// its own code reaches (host_call here, never log).
package main

import (
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
)

type magicWord struct{}

func (magicWord) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	word := req.Params["word"]
	if len(word) == 0 {
		return authn.Form(abi.Field{Name: "word", Type: abi.FieldPassword, Label: "Magic word", Required: true}), nil
	}
	key := "attempts:" + req.FlowID
	n, _, err := host.KVGet(req.Tenant, key)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if len(n) >= 3 {
		return authn.NotAuthenticated(abi.ReasonLocked), nil
	}
	if err := host.KVSet(req.Tenant, key, append(n, 1), 10*time.Minute); err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if word[0] != "please" {
		return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
	}
	return authn.Authenticated("u-1", map[string]any{"polite": true}), nil
}

func init() {
	plugin.Define(plugin.Meta{
		Name:         "magic-word",
		Version:      "1.0.0",
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityKV}},
	})
	authn.Register("magic_word", magicWord{})
}

func main() {}
