//go:build !wasip1

package guest

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Outside a wasip1 build there is no host to import functions from. These
// stand-ins keep the package building on every platform (so plugin code
// type-checks and unit-tests with the ordinary go tool). They reach the
// TestHost installed with SetTestHost, when there is one; otherwise calling
// one is a programmer error, and they panic with ErrNotInGuest.

func logImpl(level Level, msg string) {
	currentTestHost().Log(level, msg)
}

func nowImpl() int64 {
	return currentTestHost().Now().UnixNano()
}

func randomImpl(b []byte) {
	currentTestHost().Random(b)
}

func hostCallImpl(req []byte) ([]byte, error) {
	return currentTestHost().HostCall(req)
}

// TestHost stands in for the Latch host in a native (non-wasm) build, so
// that a plugin's code runs under plain `go test`: while one is installed
// with SetTestHost, Log, Now, Random and HostCall call its methods instead
// of panicking with ErrNotInGuest. Package sdk/plugintest implements it (a
// fake host with a key-value store, secrets, an HTTP handler and a log
// recorder); plugin authors use that rather than this.
//
// It exists only outside wasip1 builds: a real guest has no test seam, and
// its host functions are always the WASM imports.
type TestHost interface {
	// Log receives what Log sends (host function log).
	Log(level Level, msg string)
	// Now answers Now (host function now_unix_nanos).
	Now() time.Time
	// Random fills b for Random (host function random); b is at most
	// MaxRandomBytes long.
	Random(b []byte)
	// HostCall answers HostCall: req is an encoded abi.HostCall envelope,
	// the result an encoded abi.HostReply (host function host_call).
	HostCall(req []byte) ([]byte, error)
}

// testHostBox holds a TestHost so that it can live in an atomic.Pointer.
type testHostBox struct{ h TestHost }

var (
	// testHost is the installed TestHost, nil when there is none.
	testHost atomic.Pointer[testHostBox]
	// testMu serialises TestCall and TestDescribe, which share the
	// package's buffers and handlers as the exports of a real guest do.
	testMu sync.Mutex
)

// SetTestHost installs h as the host that Log, Now, Random and HostCall
// reach, and returns a function that puts back the host installed before
// (nil when none). SetTestHost(nil) removes the test host, so that they
// panic with ErrNotInGuest again. It is safe to call from several
// goroutines, but there is one test host per process: a harness that runs
// tests in parallel installs its host around each call, under its own lock
// (as sdk/plugintest does).
//
// SetTestHost exists only outside wasip1 builds.
func SetTestHost(h TestHost) (restore func()) {
	var box *testHostBox
	if h != nil {
		box = &testHostBox{h: h}
	}
	prev := testHost.Swap(box)
	return func() { testHost.Store(prev) }
}

// currentTestHost returns the installed TestHost and panics with
// ErrNotInGuest when there is none.
func currentTestHost() TestHost {
	box := testHost.Load()
	if box == nil {
		panic(ErrNotInGuest)
	}
	return box.h
}

// TestCall runs the function registered with Handle on call as the
// latch_handle export would: the call is copied into the guest's call
// buffer first (so the handler sees the same aliasing as in WASM), and the
// reply is returned as the handler produced it, valid until the next
// TestCall. Without a registered handler it panics, as latch_handle traps.
// Calls are serialised.
//
// TestCall exists only outside wasip1 builds; sdk/plugintest drives a
// plugin's dispatcher through it.
func TestCall(call []byte) []byte {
	testMu.Lock()
	defer testMu.Unlock()
	if handler == nil {
		panic("guest: no handler registered: call guest.Handle from an init function")
	}
	buf, ok := nextBuffer(size(len(call)))
	if !ok {
		panic("guest: TestCall: the call is larger than the guest's buffer limit")
	}
	copy(buf, call)
	in, _ := beginCall(size(len(call)))
	defer endCall()
	return handler(in)
}

// TestDescribe returns the message of the function registered with
// Describe, as the latch_describe export would, and nil when none is
// registered.
//
// TestDescribe exists only outside wasip1 builds.
func TestDescribe() []byte {
	testMu.Lock()
	defer testMu.Unlock()
	if describer == nil {
		return nil
	}
	return describer()
}

// size returns a length as the convention's i32, saturating: a native
// test has no 4 GiB linear memory to bound it.
func size(n int) uint32 {
	if n < 0 || n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}
