// Command multi is the test guest built on sdk/guest. The first byte of a
// call picks a behaviour:
//
//	'e' echo: reply with the whole call
//	'n' count: reply with how many calls this instance has handled (decimal)
//	'l' loop: spin forever
//	's' sleep: time.Sleep for an hour
//	'm' memhog: allocate 1 MiB blocks until memory runs out
//	'p' panic: panic (a Go guest exits, which the host sees as a trap)
//	'h' huge: reply with as many bytes as the decimal after 'h' says
//	'L' logger: log the rest of the call, then reply with the host time (8
//	    bytes, big-endian Unix nanoseconds) and 32 random bytes
//	'c' host call: pass the rest of the call to host_call and reply with
//	    the answer, or "error: ..." when there is none
//	'v' environment: reply with the GOGC and GOMEMLIMIT the runtime read,
//	    as "GOGC=...,GOMEMLIMIT=..." (the latter from debug.SetMemoryLimit)
//	'C' host calls: like 'c' but twice, replying with both answers
//	    joined by '|', and the original call after them, to show that the
//	    answers did not overwrite it
package main

import (
	"encoding/binary"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/latchid/latch/sdk/guest"
)

var (
	calls int
	hog   [][]byte
	sink  int
)

func init() {
	guest.Handle(handle)
	guest.Describe(func() []byte { return []byte("multi test guest") })
}

func handle(call []byte) []byte {
	calls++
	if len(call) == 0 {
		return nil
	}
	switch call[0] {
	case 'e':
		return call
	case 'v':
		return []byte("GOGC=" + os.Getenv("GOGC") + ",GOMEMLIMIT=" + strconv.FormatInt(debug.SetMemoryLimit(-1), 10))
	case 'n':
		return strconv.AppendInt(nil, int64(calls), 10)
	case 'l':
		for i := 0; ; i++ {
			sink += i
		}
	case 's':
		time.Sleep(time.Hour)
		return []byte("woke up")
	case 'm':
		for {
			b := make([]byte, 1<<20)
			b[0] = 1
			hog = append(hog, b)
		}
	case 'p':
		panic("multi guest: asked to panic")
	case 'h':
		n, err := strconv.Atoi(string(call[1:]))
		if err != nil {
			return []byte("error: " + err.Error())
		}
		return make([]byte, n)
	case 'L':
		guest.Log(guest.LevelInfo, string(call[1:]))
		out := binary.BigEndian.AppendUint64(nil, uint64(guest.Now().UnixNano()))
		r := make([]byte, 32)
		guest.Random(r)
		return append(out, r...)
	case 'c':
		ans, err := guest.HostCall(call[1:])
		if err != nil {
			return []byte("error: " + err.Error())
		}
		return ans
	case 'C':
		a, err := guest.HostCall(call[1:])
		if err != nil {
			return []byte("error: " + err.Error())
		}
		b, err := guest.HostCall([]byte("second"))
		if err != nil {
			return []byte("error: " + err.Error())
		}
		out := append(a, '|')
		out = append(out, b...)
		out = append(out, '|')
		return append(out, call...)
	}
	return []byte("error: unknown behaviour " + strconv.Quote(string(call[:1])))
}

func main() {}
