package abi_test

import (
	"encoding/json"
	"testing"

	"github.com/latchid/latch/abi"
)

// The performance goal: a bare ABI round trip of a ~200-byte message on a
// warm WASM instance within 2 µs. These benchmarks measure the codec's share
// on the host; the guest runs the same code compiled to WASM.

func authnResponse() *abi.AuthenticateResponse {
	return &abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: "u-42", AMR: []string{"pwd"}}
}

func BenchmarkAuthenticateRequest(b *testing.B) {
	req := authnRequest()
	enc, _ := req.AppendWire(nil)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = req.AppendWire(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		var out abi.AuthenticateRequest
		for b.Loop() {
			if err := out.UnmarshalWire(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode+decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, 1024)
		var out abi.AuthenticateRequest
		for b.Loop() {
			var err error
			if buf, err = req.AppendWire(buf[:0]); err != nil {
				b.Fatal(err)
			}
			if err := out.UnmarshalWire(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json encode+decode", func(b *testing.B) { // for comparison only
		b.ReportAllocs()
		var out abi.AuthenticateRequest
		for b.Loop() {
			j, err := json.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			out = abi.AuthenticateRequest{}
			if err := json.Unmarshal(j, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCallEnvelope(b *testing.B) {
	payload, _ := authnRequest().AppendWire(nil)
	b.Run("envelope only", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		in := abi.Call{Op: abi.OpCodeAuthenticate, Payload: payload}
		var out abi.Call
		for b.Loop() {
			var err error
			if buf, err = in.AppendWire(buf[:0]); err != nil {
				b.Fatal(err)
			}
			if err := out.UnmarshalWire(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendCall+decode", func(b *testing.B) {
		b.ReportAllocs()
		req := authnRequest()
		buf := make([]byte, 0, 1024)
		var c abi.Call
		var out abi.AuthenticateRequest
		for b.Loop() {
			var err error
			if buf, err = abi.AppendCall(buf[:0], abi.OpCodeAuthenticate, req); err != nil {
				b.Fatal(err)
			}
			if err := c.UnmarshalWire(buf); err != nil {
				b.Fatal(err)
			}
			if err := out.UnmarshalWire(c.Payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkABIRoundTrip runs both sides of one call in one process: the
// host encodes the call, the guest decodes it and encodes its reply, the
// host decodes the reply. Only the WASM boundary crossing is missing.
func BenchmarkABIRoundTrip(b *testing.B) {
	b.ReportAllocs()
	req, resp := authnRequest(), authnResponse()
	hostBuf := make([]byte, 0, 1024)
	guestBuf := make([]byte, 0, 1024)
	for b.Loop() {
		// host
		var err error
		if hostBuf, err = abi.AppendCall(hostBuf[:0], abi.OpCodeAuthenticate, req); err != nil {
			b.Fatal(err)
		}
		// guest
		var call abi.Call
		if err := call.UnmarshalWire(hostBuf); err != nil {
			b.Fatal(err)
		}
		var greq abi.AuthenticateRequest
		if err := greq.UnmarshalWire(call.Payload); err != nil {
			b.Fatal(err)
		}
		if guestBuf, err = abi.AppendReply(guestBuf[:0], resp); err != nil {
			b.Fatal(err)
		}
		// host
		var reply abi.Reply
		if err := reply.UnmarshalWire(guestBuf); err != nil {
			b.Fatal(err)
		}
		var hresp abi.AuthenticateResponse
		if err := hresp.UnmarshalWire(reply.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapResponseClaims(b *testing.B) {
	b.ReportAllocs()
	m := &abi.MapResponse{Claims: map[string]any{
		"sub": "u-42", "email": "alice@example.com", "email_verified": true,
		"groups": []any{"admins", "sales"}, "given_name": "Alice", "auth_time": 1767225600.0,
	}}
	buf := make([]byte, 0, 1024)
	var out abi.MapResponse
	for b.Loop() {
		var err error
		if buf, err = m.AppendWire(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if err := out.UnmarshalWire(buf); err != nil {
			b.Fatal(err)
		}
	}
}
