//go:build !wasip1

package claims_test

import (
	"fmt"
	"maps"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/claims"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

// legacyNames renames the claims of an old directory to the local dialect
// and passes every other claim through, as mappers in a chain must.
type legacyNames struct{}

var renames = map[string]string{"fname": "given_name", "lname": "family_name"}

func (legacyNames) Map(req abi.MapRequest) (abi.MapResponse, error) {
	if req.From != abi.DialectRemote || req.To != abi.DialectLocal {
		return abi.MapResponse{Claims: req.Claims}, nil
	}
	out := maps.Clone(req.Claims)
	for from, to := range renames {
		if v, ok := out[from]; ok {
			delete(out, from)
			out[to] = v
		}
	}
	return abi.MapResponse{Claims: out}, nil
}

var _ claims.Mapper = legacyNames{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	plugin.Define(plugin.Meta{Name: "legacy-claims", Version: "1.0.0"})
	claims.Register("legacy_names", legacyNames{})
}

func Example() {
	h := plugintest.New(nil) // in a test: plugintest.New(t)
	resp, err := h.MapClaims("legacy_names", abi.MapRequest{
		From:   abi.DialectRemote,
		To:     abi.DialectLocal,
		Claims: map[string]any{"fname": "Alice", "lname": "Liddell", "age": 7.0},
	})
	fmt.Println(resp.Claims, err)
	// Output:
	// map[age:7 family_name:Liddell given_name:Alice] <nil>
}
