// Command nativemisbehave is the native (go-plugin) test guest of
// RunRobustness: an authenticator that misbehaves on request, served with
// sdk/plugin/native. The form parameter "do" picks what a call does:
//
//	ok         authenticate as "u-ok"
//	loop       spin forever (the host kills the process at the deadline)
//	panic      panic (the process dies)
//	exit       exit with status 3 (the process dies)
//	garbage    reply with bytes that are no Reply envelope
//	oversized  reply with 2 MiB, over the contract's 1 MiB message limit
//	ungranted  ask the host for a kv value, a capability it was not
//	           granted, and answer not_authenticated with the refusal's
//	           code as the reason
//	echo_kv    read kv key "k" through the host (declared when the binary
//	           runs with -kv) and authenticate as its value
//
// It is written against sdk/guest directly, below the SDK's dispatcher, so
// that it can break the contract. A WASM guest cannot be stopped this way
// from outside; a native process can, which is what the test proves the
// host survives.
package main

import (
	"os"
	"slices"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/plugin/native"
)

var described []byte

//nolint:gochecknoinits // the guest registers in init, as a WASM guest does
func init() {
	desc := abi.Description{
		ABIVersion:   abi.Version,
		Name:         "nativemisbehave",
		Version:      "0.1.0",
		Extensions:   []abi.ExtensionEntry{{Kind: abi.KindAuthenticator, Name: "misbehave"}},
		Capabilities: []abi.CapabilityRequest{{Name: abi.CapabilityConfig}},
	}
	if slices.Contains(os.Args[1:], "-kv") {
		desc.Capabilities = append(desc.Capabilities, abi.CapabilityRequest{Name: abi.CapabilityKV})
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
	case "panic":
		panic("nativemisbehave: asked to panic")
	case "exit":
		os.Exit(3)
	case "garbage":
		return []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f}
	case "oversized":
		return make([]byte, 2<<20)
	case "ungranted", "echo_kv":
		hc, _ := abi.AppendHostCall(nil, abi.HostOpKVGet, &abi.KVGetRequest{Tenant: req.Tenant, Key: "k"})
		out, err := guest.HostCall(hc)
		var rep abi.HostReply
		if err != nil || rep.UnmarshalWire(out) != nil {
			return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: "host_call_failed"})
		}
		if rep.Error != nil {
			return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: rep.Error.Code})
		}
		var kv abi.KVGetResponse
		if kv.UnmarshalWire(rep.Payload) != nil || !kv.Found {
			return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: "no_refusal"})
		}
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: string(kv.Value)})
	}
	return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials})
}

func main() { native.Serve() }
