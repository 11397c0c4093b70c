// Command pin is the test guest of kernel/plugin, built on sdk/guest and
// the abi types. It declares three extensions:
//
//	entry 0, authenticator "pin": the form parameter pin against the
//	    configuration's pin: authenticated (subject "pin-user"), a form
//	    challenge when the parameter is missing, not_authenticated when it
//	    differs. Special parameters: "panic" traps the guest, "forbidden"
//	    answers a Reply.Error forbidden, "down" answers OutcomeFailure with
//	    unavailable, "garbage" answers a reply that does not decode.
//	    Configure refuses pin "0000" (invalid_request).
//	entry 1, throttler "always": allows everything, 42 remaining.
//	entry 2, claims "upper": upper-cases string claims; its health check
//	    answers unavailable.
//
// The configuration travels in every request's Config; the parsed pin is
// cached by the configuration's bytes.
package main

import (
	"encoding/json"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

const (
	entryPin uint32 = iota
	entryAlways
	entryUpper
)

var described []byte

func init() {
	desc := abi.Description{
		ABIVersion: abi.Version,
		Name:       "testpin",
		Version:    "0.1.0",
		Extensions: []abi.ExtensionEntry{
			{Kind: abi.KindAuthenticator, Name: "pin"},
			{Kind: abi.KindThrottler, Name: "always"},
			{Kind: abi.KindClaims, Name: "upper"},
		},
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"pin":{"type":"string","pattern":"^[0-9]{4,8}$"}},"additionalProperties":false}`),
	}
	var err error
	if described, err = desc.AppendWire(nil); err != nil {
		panic(err)
	}
	guest.Handle(handle)
	guest.Describe(func() []byte { return described })
}

// The last configuration parsed, and its pin.
var (
	lastConfig string
	lastPin    string
)

func pinOf(config []byte) (string, bool) {
	if string(config) == lastConfig && lastConfig != "" {
		return lastPin, true
	}
	var c struct {
		Pin string `json:"pin"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return "", false
	}
	lastConfig, lastPin = string(config), c.Pin
	return c.Pin, true
}

// out is the reply buffer, reused across calls (sdk/guest keeps the reply
// alive until the next call).
var out []byte

func fail(code, msg string) []byte {
	rep := abi.Reply{Error: &abi.Error{Code: code, Message: msg}}
	b, err := rep.AppendWire(out[:0])
	if err != nil {
		panic(err)
	}
	out = b
	return b
}

func reply(resp abi.Message) []byte {
	b, err := abi.AppendReply(out[:0], resp)
	if err != nil {
		return fail(abi.CodeInternal, err.Error())
	}
	out = b
	return b
}

func handle(in []byte) []byte {
	var call abi.Call
	if err := call.UnmarshalWire(in); err != nil {
		return fail(abi.CodeInvalidRequest, err.Error())
	}
	switch call.Op {
	case abi.OpCodeConfigure:
		var req abi.ConfigureRequest
		if err := req.UnmarshalWire(call.Payload); err != nil {
			return fail(abi.CodeInvalidRequest, err.Error())
		}
		pin, ok := pinOf(req.Config)
		if !ok {
			return fail(abi.CodeInvalidRequest, "configuration is not JSON")
		}
		if call.Entry == entryPin && pin == "0000" {
			return fail(abi.CodeInvalidRequest, "pin 0000 is too weak")
		}
		return nil
	case abi.OpCodeHealth:
		if call.Entry == entryUpper {
			return fail(abi.CodeUnavailable, "upper is never healthy")
		}
		return nil
	case abi.OpCodeClose:
		return nil
	case abi.OpCodeAuthenticate:
		if call.Entry == entryPin {
			return authenticate(call.Payload)
		}
	case abi.OpCodeAllow:
		if call.Entry == entryAlways {
			return reply(&abi.AllowResponse{Allowed: true, Remaining: 42})
		}
	case abi.OpCodeMapClaims:
		if call.Entry == entryUpper {
			return mapClaims(call.Payload)
		}
	}
	return fail(abi.CodeUnsupported, "operation "+call.Op.String()+" is not supported by this entry")
}

var challenge = &abi.Challenge{Kind: abi.ChallengeForm, Fields: []abi.Field{{Name: "pin", Type: abi.FieldOTP, Label: "PIN", Required: true}}}

func authenticate(payload []byte) []byte {
	var req abi.AuthenticateRequest
	if err := req.UnmarshalWire(payload); err != nil {
		return fail(abi.CodeInvalidRequest, err.Error())
	}
	want, ok := pinOf(req.Config)
	if !ok {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: &abi.Error{Code: abi.CodeInternal, Message: "configuration is not JSON"}})
	}
	got := req.Params["pin"]
	if len(got) == 0 {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeChallenge, Challenge: challenge})
	}
	switch got[0] {
	case "panic":
		panic("pin guest: asked to panic")
	case "forbidden":
		return fail(abi.CodeForbidden, "no entry")
	case "down":
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeFailure, Error: &abi.Error{Code: abi.CodeUnavailable, Message: "pin service down"}})
	case "garbage":
		out = append(out[:0], 0x0a, 0x05, 0xff) // Reply.Payload claiming 5 bytes, holding 1
		return out
	}
	if want != "" && got[0] == want {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "pin-user", AMR: amr})
	}
	return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials})
}

var amr = []string{"otp"}

func mapClaims(payload []byte) []byte {
	var req abi.MapRequest
	if err := req.UnmarshalWire(payload); err != nil {
		return fail(abi.CodeInvalidRequest, err.Error())
	}
	claims := make(map[string]any, len(req.Claims))
	for k, v := range req.Claims {
		if s, ok := v.(string); ok {
			v = strings.ToUpper(s)
		}
		claims[k] = v
	}
	return reply(&abi.MapResponse{Claims: claims})
}

func main() {}
