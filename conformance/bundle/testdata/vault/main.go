// Command vault is the native test plugin of the bundle suite: an
// authenticator ("authn.pin" of bundle "vault") that checks the form
// parameter pin against a secret. The secret is the configuration's "pin"
// field, which the bundle's schema marks writeOnly, so the server keeps it
// sealed; with "via_host": true the plugin reads it through the secrets
// host call instead of its configuration. Built with go build, it serves
// itself over the go-plugin transport.
package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugin/native"
)

const schema = `{"type":"object","properties":{
  "pin":{"type":"string","pattern":"^[0-9]{4,8}$","writeOnly":true},
  "via_host":{"type":"boolean"}},"required":["pin"],"additionalProperties":false}`

type config struct {
	Pin     string `json:"pin"`
	ViaHost bool   `json:"via_host"`
}

type vault struct{}

func (vault) Configure(raw []byte) error {
	var c config
	if err := json.Unmarshal(raw, &c); err != nil {
		return plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	if c.Pin == "" {
		return plugin.ErrInvalidRequest.WithMessage("pin: required")
	}
	return nil
}

var challenge = abi.Field{Name: "pin", Type: abi.FieldOTP, Label: "PIN", Required: true}

func (vault) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	var c config
	if err := json.Unmarshal(req.Config, &c); err != nil {
		return abi.AuthenticateResponse{}, err
	}
	want := c.Pin
	if c.ViaHost {
		v, err := host.Secret(req.Tenant, "pin")
		if err != nil {
			return abi.AuthenticateResponse{}, errors.New("reading the pin secret")
		}
		want = string(v)
	}
	got := req.Params["pin"]
	if len(got) == 0 {
		return authn.Form(challenge), nil
	}
	if want != "" && subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) == 1 {
		r := authn.Authenticated("pin-user", nil)
		r.AMR = []string{"otp"}
		return r, nil
	}
	return authn.NotAuthenticated(abi.ReasonInvalidCredentials), nil
}

//nolint:gochecknoinits // plugins register in init (see sdk/plugin)
func init() {
	plugin.Define(plugin.Meta{Name: "vault", Version: "1.0.0", ConfigSchema: []byte(schema),
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilitySecrets}}})
	authn.Register("pin", vault{})
}

func main() { native.Serve() }
