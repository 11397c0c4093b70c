package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects the changes a handler receives.
type recorder struct {
	mu  sync.Mutex
	got []Change
	ch  chan Change
}

func newRecorder() *recorder { return &recorder{ch: make(chan Change, 1024)} }

func (r *recorder) handle(_ context.Context, c Change) {
	r.mu.Lock()
	r.got = append(r.got, c)
	r.mu.Unlock()
	r.ch <- c
}

// next waits for the next change, failing after a generous limit (a
// deadlock guard, not a timing assertion).
func (r *recorder) next(t *testing.T) Change {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change delivered")
		return Change{}
	}
}

func TestChangeValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Change
		ok   bool
	}{
		{"topic and key", Change{Topic: TopicClients, Key: "tenant-1"}, true},
		{"topic only", Change{Topic: TopicDenyPolicies}, true},
		{"dotted topic", Change{Topic: "plugin.sms_otp"}, true},
		{"empty topic", Change{}, false},
		{"uppercase topic", Change{Topic: "Clients"}, false},
		{"topic starting with a digit", Change{Topic: "1clients"}, false},
		{"topic with a space", Change{Topic: "a b"}, false},
		{"long topic", Change{Topic: strings.Repeat("a", MaxTopicLen+1)}, false},
		{"longest key", Change{Topic: "a", Key: strings.Repeat("k", MaxKeyLen)}, true},
		{"long key", Change{Topic: "a", Key: strings.Repeat("k", MaxKeyLen+1)}, false},
		{"resync from a publisher", Change{Topic: "a", Resync: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidChange) {
				t.Errorf("error %v is not ErrInvalidChange", err)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range []Change{
		{Topic: TopicKeys, Key: "01a2-tenant"},
		{Topic: TopicDenyPolicies},
		{Topic: "x", Key: `quote " and \ and ünïcode`},
	} {
		p, err := encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(p)
		if err != nil || got != c {
			t.Errorf("decode(encode(%+v)) = %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "{", `{"t":""}`, `{"t":"Bad"}`, `[1]`, `{"t":"a","k":` + `"` + strings.Repeat("k", MaxKeyLen+1) + `"}`} {
		if _, err := decode(bad); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("decode(%.40q) = %v, want ErrInvalidChange", bad, err)
		}
	}
}

func TestLocalDeliversByTopicInOrder(t *testing.T) {
	l := NewLocal(nil)
	defer func() { _ = l.Close() }()
	clients, keys := newRecorder(), newRecorder()
	l.Subscribe(TopicClients, clients.handle)
	l.Subscribe(TopicKeys, keys.handle)

	want := []Change{{Topic: TopicClients, Key: "t1"}, {Topic: TopicClients, Key: "t2"}, {Topic: TopicClients, Key: "t3"}}
	if err := l.Publish(context.Background(), Change{Topic: TopicKeys, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range want {
		if err := l.Publish(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		if got := clients.next(t); got != w {
			t.Errorf("change %d = %+v, want %+v", i, got, w)
		}
	}
	if got := keys.next(t); got != (Change{Topic: TopicKeys, Key: "k"}) {
		t.Errorf("keys got %+v", got)
	}
	if err := l.Publish(context.Background(), Change{Topic: "Bad"}); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("publishing a bad topic: %v", err)
	}
}

func TestLocalUnsubscribeAndClose(t *testing.T) {
	l := NewLocal(nil)
	r := newRecorder()
	unsubscribe := l.Subscribe("a", r.handle)
	if err := l.Publish(context.Background(), Change{Topic: "a", Key: "1"}); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	unsubscribe()
	unsubscribe() // idempotent
	if err := l.Publish(context.Background(), Change{Topic: "a", Key: "2"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	n := len(r.got)
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("an unsubscribed handler got %d changes, want 1", n)
	}
	if err := l.Publish(context.Background(), Change{Topic: "a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	l.Subscribe("a", r.handle)() // subscribing to a closed bus is harmless
}

// TestLocalOverflowBecomesResync blocks a handler, overfills its queue,
// and checks that the queued changes are replaced by one Resync.
func TestLocalOverflowBecomesResync(t *testing.T) {
	l := NewLocal(nil)
	defer func() { _ = l.Close() }()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	r := newRecorder()
	l.Subscribe("a", func(ctx context.Context, c Change) {
		if c.Key == "block" {
			entered <- struct{}{}
			<-release
		}
		r.handle(ctx, c)
	})
	if err := l.Publish(context.Background(), Change{Topic: "a", Key: "block"}); err != nil {
		t.Fatal(err)
	}
	<-entered
	for range maxQueued + 1 {
		if err := l.Publish(context.Background(), Change{Topic: "a", Key: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if got := r.next(t); got.Key != "block" {
		t.Fatalf("first change %+v", got)
	}
	if got := r.next(t); got != (Change{Topic: "a", Resync: true}) {
		t.Fatalf("after the overflow got %+v, want a Resync", got)
	}
	// Delivery goes on normally afterwards.
	if err := l.Publish(context.Background(), Change{Topic: "a", Key: "after"}); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got.Key != "after" || got.Resync {
		t.Fatalf("after the resync got %+v", got)
	}
}

func TestLocalResyncAndPanic(t *testing.T) {
	l := NewLocal(nil)
	defer func() { _ = l.Close() }()
	a, b := newRecorder(), newRecorder()
	l.Subscribe("a", func(ctx context.Context, c Change) {
		a.handle(ctx, c)
		if c.Key == "boom" {
			panic("handler bug")
		}
	})
	l.Subscribe("b", b.handle)
	if err := l.Publish(context.Background(), Change{Topic: "a", Key: "boom"}); err != nil {
		t.Fatal(err)
	}
	a.next(t)
	l.Resync()
	if got := a.next(t); got != (Change{Topic: "a", Resync: true}) {
		t.Errorf("a got %+v after a panic and a resync", got)
	}
	if got := b.next(t); got != (Change{Topic: "b", Resync: true}) {
		t.Errorf("b got %+v", got)
	}
}
