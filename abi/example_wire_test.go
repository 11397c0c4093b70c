package abi_test

import (
	"errors"
	"fmt"

	"github.com/latchid/latch/abi"
)

// The worked example of SPEC.md: an AllowRequest in 38 bytes.
func ExampleAllowRequest_AppendWire() {
	req := abi.AllowRequest{
		Tenant: "acme",
		Key:    "login:ip:203.0.113.7",
		Cost:   1,
		Limit:  abi.Limit{Rate: 10, PeriodMillis: 60000},
	}
	b, err := req.AppendWire(nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes\n", len(b))
	fmt.Printf("% x\n", b[:6])    // field 1, Tenant
	fmt.Printf("% x\n", b[6:28])  // field 2, Key
	fmt.Printf("% x\n", b[28:30]) // field 3, Cost
	fmt.Printf("% x\n", b[30:])   // field 4, Limit
	// Output:
	// 38 bytes
	// 0a 04 61 63 6d 65
	// 12 14 6c 6f 67 69 6e 3a 69 70 3a 32 30 33 2e 30 2e 31 31 33 2e 37
	// 18 02
	// 22 06 08 14 10 c0 a9 07
}

func ExampleAllowRequest_UnmarshalWire() {
	in := []byte{0x0a, 0x04, 'a', 'c', 'm', 'e', 0x18, 0x02, 0x22, 0x02, 0x08, 0x14}
	var req abi.AllowRequest
	if err := req.UnmarshalWire(in); err != nil {
		panic(err)
	}
	fmt.Println(req.Tenant, req.Cost, req.Limit.Rate)

	// A length that runs past the end of the input is refused, naming the
	// type and the field.
	err := req.UnmarshalWire([]byte{0x0a, 0x80, 0x20, 'a', 'c', 'm', 'e'})
	fmt.Println(err)
	fmt.Println(errors.Is(err, abi.ErrMalformed))
	// Output:
	// acme 1 10
	// abi: decoding AllowRequest field 1: length 4096 exceeds remaining 4 bytes
	// true
}

// A host's side of one call: encode the Call envelope with the request in
// it, and read the Reply envelope the guest wrote.
func ExampleAppendCall() {
	req := abi.AllowRequest{Tenant: "a"}
	call, err := abi.AppendCall(nil, abi.OpCodeAllow, &req)
	if err != nil {
		panic(err)
	}
	fmt.Printf("call  % x\n", call)

	// ... the guest runs, and answers (here, built in place):
	reply, _ := abi.AppendReply(nil, &abi.AllowResponse{Allowed: true, Remaining: 9})
	fmt.Printf("reply % x\n", reply)

	var r abi.Reply
	var resp abi.AllowResponse
	if err := r.UnmarshalWire(reply); err != nil || r.Error != nil {
		panic(fmt.Sprint(err, r.Error))
	}
	if err := resp.UnmarshalWire(r.Payload); err != nil {
		panic(err)
	}
	fmt.Println(resp.Allowed, resp.Remaining)
	// Output:
	// call  08 50 12 03 0a 01 61
	// reply 0a 04 08 01 10 12
	// true 9
}

func ExamplePackPtrLen() {
	v := abi.PackPtrLen(0x10000, 200)
	fmt.Printf("%#016x\n", v)
	ptr, n := abi.UnpackPtrLen(v)
	fmt.Printf("%#x %d\n", ptr, n)
	// Output:
	// 0x00010000000000c8
	// 0x10000 200
}

func ExampleLookupOp() {
	code, ok := abi.LookupOp(abi.OpAuthenticate)
	fmt.Println(uint32(code), ok, code, code.Kind())
	// Output: 16 true authenticate authenticator
}
