package abi_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/latchid/latch/abi"
)

// fuzzDecoder checks, for arbitrary input, that decoding never panics and
// that whatever decodes survives encode and decode unchanged, and encodes
// canonically (a second encoding gives the same bytes).
func fuzzDecoder(f *testing.F, newMsg func() abi.Message) {
	f.Helper()
	name := reflect.TypeOf(newMsg()).Elem().Name()
	for _, c := range cases() {
		if c.name == name {
			b, err := c.msg.AppendWire(nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			f.Add(appendUnknown(b))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80, 0x20})
	f.Fuzz(func(t *testing.T, in []byte) {
		x := newMsg()
		if err := x.UnmarshalWire(in); err != nil {
			return
		}
		b, err := x.AppendWire(nil)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", x, err)
		}
		y := newMsg()
		if err := y.UnmarshalWire(b); err != nil {
			t.Fatalf("cannot decode own encoding %x: %v", b, err)
		}
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("decode(encode(x)) != x:\n x %+v\n y %+v", x, y)
		}
		b2, err := y.AppendWire(nil)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not canonical: %x then %x (%v)", b, b2, err)
		}
	})
}

func FuzzCall(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.Call) })
}

func FuzzReply(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.Reply) })
}

func FuzzHostCall(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.HostCall) })
}

func FuzzAuthenticateRequest(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.AuthenticateRequest) })
}

func FuzzAuthenticateResponse(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.AuthenticateResponse) })
}

func FuzzTokenRequest(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.TokenRequest) })
}

func FuzzTokenResponse(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.TokenResponse) })
}

func FuzzDescription(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.Description) })
}

func FuzzFindUsersResponse(f *testing.F) {
	fuzzDecoder(f, func() abi.Message { return new(abi.FindUsersResponse) })
}
