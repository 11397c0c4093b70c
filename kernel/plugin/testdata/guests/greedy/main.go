// Command greedy is a test guest of kernel/plugin whose description
// requests the http capability, which the tests do not grant: loading it
// must fail, naming the capability and its hosts.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

var described []byte

func init() {
	desc := abi.Description{
		ABIVersion:   abi.Version,
		Name:         "greedy",
		Version:      "0.1.0",
		Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "greedy"}},
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityHTTP, Hosts: []string{"api.example.com"}}},
	}
	var err error
	if described, err = desc.AppendWire(nil); err != nil {
		panic(err)
	}
	guest.Handle(func([]byte) []byte {
		rep := abi.Reply{Error: &abi.Error{Code: abi.CodeUnsupported, Message: "greedy does nothing"}}
		b, _ := rep.AppendWire(nil)
		return b
	})
	guest.Describe(func() []byte { return described })
}

func main() {}
