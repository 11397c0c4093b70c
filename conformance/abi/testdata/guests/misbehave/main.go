// Command misbehave is the test guest of RunRobustness: an authenticator
// that misbehaves on request. The form parameter "do" picks what a call
// does:
//
//	ok         authenticate as "u-ok"
//	loop       spin forever (stopped at the call's deadline)
//	hog        allocate until the memory cap stops it
//	panic      panic (a trap)
//	garbage    reply with bytes that are no Reply envelope
//	oversized  reply with 2 MiB, over the host's 1 MiB message limit
//	ungranted  ask the host for a kv value, a capability it was not
//	           granted, and answer not_authenticated with the refusal's
//	           code as the reason
//
// It is written against sdk/guest directly, below the SDK's dispatcher, so
// that it can break the contract.
package main

import (
	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
)

var (
	described []byte
	hoard     [][]byte
)

func init() {
	desc := abi.Description{
		ABIVersion:   abi.Version,
		Name:         "misbehave",
		Version:      "0.1.0",
		Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "misbehave"}},
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityConfig}},
	}
	var err error
	if described, err = desc.AppendWire(nil); err != nil {
		panic(err)
	}
	guest.Describe(func() []byte { return described })
	guest.Handle(handle)
}

func reply(m abi.Message) []byte {
	b, err := abi.AppendReply(nil, m)
	if err != nil {
		panic(err)
	}
	return b
}

func handle(call []byte) []byte {
	var c abi.Call
	if err := c.UnmarshalWire(call); err != nil {
		return []byte{0xff}
	}
	if c.Op != abi.OpCodeAuthenticate {
		return nil // configure, health, close: an empty success
	}
	var req abi.AuthenticateRequest
	if err := req.UnmarshalWire(c.Payload); err != nil {
		return []byte{0xff}
	}
	do := ""
	if v := req.Params["do"]; len(v) > 0 {
		do = v[0]
	}
	switch do {
	case "ok":
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "u-ok"})
	case "loop":
		for n := 0; ; n++ {
			_ = n
		}
	case "hog":
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case "panic":
		panic("misbehave: asked to panic")
	case "garbage":
		return []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f}
	case "oversized":
		return make([]byte, 2<<20)
	case "ungranted":
		hc, _ := abi.AppendHostCall(nil, abi.HostOpKVGet, &abi.KVGetRequest{Tenant: req.Tenant, Key: "k"})
		out, err := guest.HostCall(hc)
		reason := "no_refusal"
		var rep abi.HostReply
		if err == nil && rep.UnmarshalWire(out) == nil && rep.Error != nil {
			reason = rep.Error.Code
		}
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason})
	}
	return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials})
}

func main() {}
