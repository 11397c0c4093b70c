//go:build !wasip1

package authn_test

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// pinAuth is a second factor: the user types the PIN the operator
// configured for the tenant.
type pinAuth struct {
	pin string
}

// Configure decodes the configuration strictly: an unknown field is an
// operator's typo, refused rather than ignored.
func (p *pinAuth) Configure(config []byte) error {
	var c struct {
		PIN string `json:"pin"`
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.PIN == "" {
		return plugin.ErrInvalidRequest.WithMessage("config: want {\"pin\": \"...\"}")
	}
	p.pin = c.PIN
	return nil
}

func (p *pinAuth) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	pin := req.Params["pin"]
	switch {
	case len(pin) == 0:
		return authn.Form(abi.Field{Name: "pin", Type: abi.FieldOTP, Label: "PIN", Required: true}), nil
	case pin[0] != p.pin:
		return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
	}
	resp := authn.Authenticated(req.KnownSubject, nil)
	resp.AMR = []string{"otp"}
	return resp, nil
}

// Compile-time checks: a method with a mistyped signature would otherwise
// be silently ignored by the dispatcher.
var (
	_ authn.Authenticator = (*pinAuth)(nil)
	_ plugin.Configurer   = (*pinAuth)(nil)
)

// A WASI reactor's main never runs: the module registers from init.
func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{Name: "pin-example", Version: "1.0.0"})
	authn.Register("pin", &pinAuth{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)
	if err := h.Configure("pin", []byte(`{"pin":"4711"}`)); err != nil {
		fmt.Println(err)
		return
	}
	step := abi.AuthenticateRequest{Tenant: "acme", FlowID: "f-1", Step: 2, KnownSubject: "u-42"}

	resp, _ := h.Authenticate("pin", step)
	fmt.Println(resp.Outcome, resp.Challenge.Kind, resp.Challenge.Fields[0].Name)

	step.Params = map[string][]string{"pin": {"0000"}}
	resp, _ = h.Authenticate("pin", step)
	fmt.Println(resp.Outcome, resp.Reason)

	step.Params = map[string][]string{"pin": {"4711"}}
	resp, _ = h.Authenticate("pin", step)
	fmt.Println(resp.Outcome, resp.Subject, resp.AMR)
	// Output:
	// challenge form pin
	// not_authenticated invalid_credentials
	// authenticated u-42 [otp]
}
