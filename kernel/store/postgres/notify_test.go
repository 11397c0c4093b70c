package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/notify"
)

// TestNotifyDialer runs two change-notification buses over the store's
// NotifyDialer, as two nodes would: a change one publishes reaches the
// other's subscribers.
func TestNotifyDialer(t *testing.T) {
	s := open(t) // a schema of its own in the shared test database
	channel, err := s.NotifyChannel(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if channel == notify.DefaultChannel || !strings.HasPrefix(channel, notify.DefaultChannel+"_") {
		t.Fatalf("the channel of a non-public schema is %q, want %s_<hash>", channel, notify.DefaultChannel)
	}
	start := func() *notify.Postgres {
		p, err := notify.NewPostgres(s.NotifyDialer(), notify.PostgresOptions{Channel: channel, ResyncInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	a, other := start(), start()
	got := make(chan notify.Change, 1)
	other.Subscribe(notify.TopicKeys, func(_ context.Context, c notify.Change) { got <- c })
	want := notify.Change{Topic: notify.TopicKeys, Key: "tenant-1"}
	if err := a.Publish(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c != want {
			t.Errorf("heard %+v, want %+v", c, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other bus heard nothing")
	}
}
