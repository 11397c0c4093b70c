//go:build !wasip1

package guest

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// recordingHost is a hand-written TestHost that records what reaches it.
type recordingHost struct {
	logs  []string
	now   time.Time
	calls [][]byte
}

func (h *recordingHost) Log(level Level, msg string) { h.logs = append(h.logs, msg) }
func (h *recordingHost) Now() time.Time              { return h.now }
func (h *recordingHost) Random(b []byte) {
	for i := range b {
		b[i] = 7
	}
}

func (h *recordingHost) HostCall(req []byte) ([]byte, error) {
	h.calls = append(h.calls, bytes.Clone(req))
	return []byte("answer"), nil
}

func TestSetTestHost(t *testing.T) {
	h := &recordingHost{now: time.Unix(1700000000, 5)}
	restore := SetTestHost(h)
	Log(LevelInfo, "hello")
	if got := Now(); !got.Equal(h.now) {
		t.Errorf("Now = %v, want %v", got, h.now)
	}
	b := make([]byte, MaxRandomBytes+3)
	Random(b)
	if bytes.Count(b, []byte{7}) != len(b) {
		t.Error("Random did not reach the test host for every chunk")
	}
	ans, err := HostCall([]byte("req"))
	if err != nil || string(ans) != "answer" || len(h.calls) != 1 || string(h.calls[0]) != "req" {
		t.Errorf("HostCall = %q, %v; calls %q", ans, err, h.calls)
	}
	if len(h.logs) != 1 || h.logs[0] != "hello" {
		t.Errorf("logs %q", h.logs)
	}

	// A nested host, then restoring both.
	inner := &recordingHost{}
	restoreInner := SetTestHost(inner)
	Log(LevelInfo, "inner")
	restoreInner()
	Log(LevelInfo, "outer again")
	restore()
	if len(inner.logs) != 1 || len(h.logs) != 2 {
		t.Errorf("inner logs %q, outer logs %q", inner.logs, h.logs)
	}
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, ErrNotInGuest) {
			t.Errorf("after restoring, Log panicked with %v, want ErrNotInGuest", err)
		}
	}()
	Log(LevelInfo, "nobody listens")
}

func TestTestCall(t *testing.T) {
	resetState(t)
	t.Cleanup(func() { handler, describer = nil, nil })
	var seen []byte
	Handle(func(call []byte) []byte {
		seen = call
		_, _ = HostCall(nil) // during the call, an answer buffer must not be the call's
		b, _ := nextBuffer(size(len(call)))
		if &b[0] == &call[0] {
			t.Error("the answer buffer is the call's buffer")
		}
		return bytes.ToUpper(call)
	})
	defer SetTestHost(&recordingHost{})()
	in := []byte("call")
	if got := TestCall(in); string(got) != "CALL" {
		t.Errorf("TestCall = %q", got)
	}
	if &seen[0] == &in[0] {
		t.Error("the handler saw the caller's slice, not the guest's call buffer")
	}
	if handling {
		t.Error("still handling after TestCall returned")
	}

	if got := TestDescribe(); got != nil {
		t.Errorf("TestDescribe without a describer = %q", got)
	}
	Describe(func() []byte { return []byte("d") })
	if got := TestDescribe(); string(got) != "d" {
		t.Errorf("TestDescribe = %q", got)
	}
}

func TestTestCallWithoutHandler(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("TestCall without a handler did not panic")
		}
	}()
	TestCall([]byte("x"))
}
