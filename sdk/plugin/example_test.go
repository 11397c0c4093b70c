//go:build !wasip1

package plugin_test

import (
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// directory is an authenticator whose directory is down: it shows what
// leaves the module when an extension fails.
type directory struct{}

func (directory) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	if req.Params["username"][0] == "bob" {
		return abi.AuthenticateResponse{}, plugin.ErrUnavailable.WithMessage("the directory is down")
	}
	return abi.AuthenticateResponse{}, errors.New("dial tcp 10.0.0.7:389: connection refused")
}

// Health reports the directory down; the host sees the code.
func (directory) Health() error { return plugin.ErrUnavailable }

var (
	_ authn.Authenticator  = directory{}
	_ plugin.HealthChecker = directory{}
)

// A WASI reactor's main never runs: the module registers from init.
func init() { //nolint:gochecknoinits // a WASM guest registers in init (see package doc)
	plugin.Define(plugin.Meta{
		Name:         "acme-directory",
		Version:      "0.3.0",
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityLog}},
		// Internal errors answer "internal error"; log their detail.
		OnInternalError: func(err error) { guest.Log(guest.LevelError, err.Error()) },
	})
	authn.Register("ldap", directory{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)
	d := h.Describe()
	fmt.Println(d.Name, d.Version, d.Extensions)

	_, err := h.Authenticate("ldap", abi.AuthenticateRequest{Params: map[string][]string{"username": {"bob"}}})
	fmt.Println(err)

	resp, err := h.Authenticate("ldap", abi.AuthenticateRequest{Params: map[string][]string{"username": {"alice"}}})
	fmt.Println(resp.Outcome, err)
	fmt.Println(h.Logs()[0].Message)

	fmt.Println(h.Health("ldap"))
	// Output:
	// acme-directory 0.3.0 [{authenticator ldap}]
	// unavailable: the directory is down
	// failure internal: internal error
	// plugin authn.ldap authenticate: dial tcp 10.0.0.7:389: connection refused
	// unavailable: unavailable
}
