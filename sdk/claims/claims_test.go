//go:build !wasip1

package claims_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/claims"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/plugintest"
)

type failing struct{ err error }

func (f *failing) Map(req abi.MapRequest) (abi.MapResponse, error) { return abi.MapResponse{}, f.err }

var fail = &failing{}

func init() { //nolint:gochecknoinits // a WASM guest registers in init (see sdk/plugin)
	claims.Register("failing", fail)
}

func TestMapRoundTrip(t *testing.T) {
	h := plugintest.New(t)
	in := map[string]any{
		"fname":  "Alice",
		"groups": []any{"a", "b"},
		"addr":   map[string]any{"city": "Oxford"},
		"n":      1.5,
		"ok":     true,
		"none":   nil,
	}
	resp, err := h.MapClaims("legacy_names", abi.MapRequest{From: abi.DialectRemote, To: abi.DialectLocal, Claims: in})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"given_name": "Alice", "groups": []any{"a", "b"}, "addr": map[string]any{"city": "Oxford"}, "n": 1.5, "ok": true, "none": nil}
	if !reflect.DeepEqual(resp.Claims, want) {
		t.Errorf("claims %v, want %v", resp.Claims, want)
	}
}

func TestMapErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"plugin error", plugin.ErrInvalidRequest.WithMessage("unknown dialect"), abi.CodeInvalidRequest, "unknown dialect"},
		{"plain error", errors.New("template: line 3: undefined variable $secret"), abi.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := plugintest.New(t)
			fail.err = tt.err
			resp, err := h.MapClaims("failing", abi.MapRequest{From: "a", To: "b"})
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != tt.wantCode || pe.Message != tt.wantMsg {
				t.Errorf("error %v, want %s %q", err, tt.wantCode, tt.wantMsg)
			}
			if resp.Error == nil || resp.Error.Code != tt.wantCode {
				t.Errorf("response error %+v", resp.Error)
			}
		})
	}
}
