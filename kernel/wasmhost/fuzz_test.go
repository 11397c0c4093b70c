package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/latchid/latch/kernel/fault"
)

// FuzzPackedReply hands the host any packed reply: a guest that returns
// ptr<<32 | len of the fuzzer's choosing. The host must answer with the
// bytes at a range inside memory and within the limit, or with
// ErrBadReply, and never panic.
func FuzzPackedReply(f *testing.F) {
	for _, v := range []uint64{
		0, pack(tinyBase, 8), pack(0, 1), pack(pageSize-1, 1), pack(pageSize, 1), pack(pageSize-8, 9),
		pack(0xffff_ffff, 1), pack(1, 0xffff_ffff), pack(tinyBase, DefaultMaxMessageBytes+1), 1 << 63,
	} {
		f.Add(v)
	}
	th := newTestHost(f, Options{})
	m, err := th.Load(context.Background(), "fuzz", tinyPackedReply(), ModuleOptions{MaxInstances: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		out, err := m.Call(context.Background(), binary.LittleEndian.AppendUint64(nil, v))
		ptr, n := unpack(v)
		inside := n == 0 || uint64(ptr)+uint64(n) <= pageSize && n <= DefaultMaxMessageBytes
		switch {
		case inside && err != nil:
			t.Fatalf("reply %#x: %v, want success", v, err)
		case inside && len(out) != int(n):
			t.Fatalf("reply %#x: %d bytes, want %d", v, len(out), n)
		case !inside && (err == nil || !errors.Is(err, ErrBadReply) || fault.CodeOf(err) != fault.CodeInternal):
			t.Fatalf("reply %#x: %v, want ErrBadReply", v, err)
		}
	})
}

// FuzzHostFunctionArgs calls log, random and host_call with the fuzzer's
// pointers and lengths. The host must serve them or trap the guest with
// ErrBadHostCall (or ErrBadReply for an answer it cannot place), and never
// panic.
func FuzzHostFunctionArgs(f *testing.F) {
	seed := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, x)
		}
		return b
	}
	f.Add(seed(0, tinyBase, 4, tinyBase, 16, tinyBase, 4))
	f.Add(seed(8, 0, 0, 0, 0, 0, 0))
	f.Add(seed(0xffffffff, pageSize-1, 2, pageSize, 1, pageSize-4, 8))
	f.Add(seed(4, 0, pageSize, 0, MaxRandomBytes+1, 0, 1))
	f.Add(seed(0, 0xffff0000, 0x20000, 0xfffffff0, 0x20, 0, 0xffffffff))
	th := newTestHost(f, Options{})
	m, err := th.Load(context.Background(), "fuzz", tinyHostArgs(), allGrants(ModuleOptions{MaxInstances: 1}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, call []byte) {
		_, err := m.Call(context.Background(), call)
		if err != nil && !errors.Is(err, ErrBadHostCall) && !errors.Is(err, ErrBadReply) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("call %x: %v, want success, ErrBadHostCall or ErrBadReply", call, err)
		}
	})
}
