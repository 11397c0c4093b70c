//go:build !wasip1

package grant_test

import (
	"fmt"
	"slices"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/grant"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// deviceGrant issues tokens for a (toy) device code: it handles only its
// own grant_type and declines every other.
type deviceGrant struct{}

const deviceGrantType = "urn:example:params:oauth:grant-type:device"

func (deviceGrant) Token(req abi.TokenRequest) (abi.TokenResponse, error) {
	if req.GrantType != deviceGrantType {
		return grant.Decline(), nil
	}
	code := req.Params["device_code"]
	if len(code) == 0 || code[0] != "d-123" {
		return abi.TokenResponse{}, plugin.ErrUnauthenticated.WithMessage("unknown or expired device code")
	}
	scopes := slices.DeleteFunc(slices.Clone(req.Scopes), func(s string) bool { return s != "orders:read" })
	return abi.TokenResponse{Subject: "u-42", Scopes: scopes, AccessTokenTTLSeconds: 300}, nil
}

var _ grant.Type = deviceGrant{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{Name: "device-example", Version: "1.0.0"})
	grant.Register("device", deviceGrant{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)

	resp, _ := h.Token("device", abi.TokenRequest{GrantType: "password"})
	fmt.Println("declined:", resp.Declined)

	_, err := h.Token("device", abi.TokenRequest{GrantType: deviceGrantType})
	fmt.Println(err)

	resp, _ = h.Token("device", abi.TokenRequest{
		GrantType: deviceGrantType,
		Scopes:    []string{"orders:read", "orders:write"},
		Params:    map[string][]string{"device_code": {"d-123"}},
	})
	fmt.Println(resp.Subject, resp.Scopes, resp.AccessTokenTTLSeconds)
	// Output:
	// declined: true
	// unauthenticated: unknown or expired device code
	// u-42 [orders:read] 300
}
