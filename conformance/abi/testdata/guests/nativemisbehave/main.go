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
//	who:<name> look the username up through the host (declared when the
//	           binary runs with -lookup): find users by the name, then get
//	           the user by the id found, and authenticate as it (subject
//	           its id, claim "username" its username), or answer
//	           not_authenticated when the host knows no such user
//
// It is written against sdk/guest directly, below the SDK's dispatcher, so
// that it can break the contract. A WASM guest cannot be stopped this way
// from outside; a native process can, which is what the test proves the
// host survives.
package main

import (
	"os"
	"slices"
	"strings"

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
	if slices.Contains(os.Args[1:], "-lookup") {
		desc.Capabilities = append(desc.Capabilities, abi.CapabilityRequest{Name: abi.CapabilityUserLookup})
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
	if name, ok := strings.CutPrefix(do, "who:"); ok {
		return who(req.Tenant, name)
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

// hostCall sends one host call and decodes its answer into resp; it
// returns the refusal's code, or "host_call_failed".
func hostCall(op abi.HostOp, req, resp abi.Message) string {
	hc, err := abi.AppendHostCall(nil, op, req)
	if err != nil {
		return "host_call_failed"
	}
	out, err := guest.HostCall(hc)
	var rep abi.HostReply
	if err != nil || rep.UnmarshalWire(out) != nil {
		return "host_call_failed"
	}
	if rep.Error != nil {
		return rep.Error.Code
	}
	if resp.UnmarshalWire(rep.Payload) != nil {
		return "host_call_failed"
	}
	return ""
}

// who authenticates as the user the host finds by username.
func who(tenant, name string) []byte {
	var found abi.FindUsersResponse
	if code := hostCall(abi.HostOpFindUsers, &abi.FindUsersRequest{Tenant: tenant, Username: name, Limit: 1}, &found); code != "" {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: code})
	}
	if found.Error != nil || len(found.Users) == 0 {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials})
	}
	var got abi.UserResponse
	if code := hostCall(abi.HostOpGetUser, &abi.GetUserRequest{Tenant: tenant, ID: found.Users[0].ID}, &got); code != "" {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: code})
	}
	if got.Error != nil {
		return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: got.Error.Code})
	}
	return reply(&abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: got.User.ID,
		Claims: map[string]any{"username": got.User.Username}})
}

func main() { native.Serve() }
