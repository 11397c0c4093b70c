package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// fakeServer is a hand-written stand-in for PostgreSQL's LISTEN/NOTIFY,
// used to break sessions at will. The real database is exercised by
// conformance/cluster (TestNotifyPostgres).
type fakeServer struct {
	mu        sync.Mutex
	listeners map[*fakeConn]string
	dialFails int // dials to refuse before the next success
	dials     int
	execFails int // Execs to fail before the next success
}

type fakeNote struct{ channel, payload string }

type fakeConn struct {
	srv    *fakeServer
	notes  chan fakeNote
	broken chan struct{}
	once   sync.Once
}

func newFakeServer() *fakeServer { return &fakeServer{listeners: map[*fakeConn]string{}} }

func (s *fakeServer) dial(ctx context.Context) (Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials++
	if s.dialFails > 0 {
		s.dialFails--
		return nil, errors.New("connection refused")
	}
	return &fakeConn{srv: s, notes: make(chan fakeNote, 64), broken: make(chan struct{})}, nil
}

// notify sends a raw notification, as any database client could.
func (s *fakeServer) notify(channel, payload string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, ch := range s.listeners {
		if ch == channel {
			c.notes <- fakeNote{channel, payload}
		}
	}
}

// breakListeners ends every listening session, as a server restart would.
func (s *fakeServer) breakListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.listeners {
		c.once.Do(func() { close(c.broken) })
		delete(s.listeners, c)
	}
}

func (c *fakeConn) Exec(ctx context.Context, sql string, args ...any) error {
	c.srv.mu.Lock()
	if c.srv.execFails > 0 {
		c.srv.execFails--
		c.srv.mu.Unlock()
		return errors.New("broken pipe")
	}
	c.srv.mu.Unlock()
	switch {
	case strings.HasPrefix(sql, "LISTEN "):
		c.srv.mu.Lock()
		c.srv.listeners[c] = strings.TrimPrefix(sql, "LISTEN ")
		c.srv.mu.Unlock()
	case sql == "SELECT pg_notify($1, $2)":
		c.srv.notify(args[0].(string), args[1].(string))
	default:
		return errors.New("unexpected statement " + sql)
	}
	return nil
}

func (c *fakeConn) WaitForNotification(ctx context.Context) (string, string, error) {
	select {
	case n := <-c.notes:
		return n.channel, n.payload, nil
	case <-c.broken:
		return "", "", errors.New("connection reset")
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func (c *fakeConn) Close(context.Context) error {
	c.srv.mu.Lock()
	delete(c.srv.listeners, c)
	c.srv.mu.Unlock()
	return nil
}

func startFake(t *testing.T, srv *fakeServer) *Postgres {
	t.Helper()
	p, err := NewPostgres(srv.dial, PostgresOptions{ResyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestPostgresDeliversAcrossNodes(t *testing.T) {
	srv := newFakeServer()
	a, b := startFake(t, srv), startFake(t, srv)
	ra, rb := newRecorder(), newRecorder()
	a.Subscribe(TopicClients, ra.handle)
	b.Subscribe(TopicClients, rb.handle)
	want := Change{Topic: TopicClients, Key: "tenant-1"}
	if err := a.Publish(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if got := rb.next(t); got != want {
		t.Errorf("other node got %+v", got)
	}
	if got := ra.next(t); got != want {
		t.Errorf("publishing node got %+v", got)
	}
	// A malformed notification is ignored; the next good one arrives.
	srv.notify(DefaultChannel, `{"t":"Clients!"}`)
	srv.notify("other_channel", `{"t":"clients"}`)
	if err := b.Publish(context.Background(), Change{Topic: TopicClients, Key: "2"}); err != nil {
		t.Fatal(err)
	}
	if got := ra.next(t); got.Key != "2" {
		t.Errorf("after a malformed notification got %+v", got)
	}
}

func TestPostgresReconnectsWithResync(t *testing.T) {
	srv := newFakeServer()
	p := startFake(t, srv)
	r := newRecorder()
	p.Subscribe(TopicKeys, r.handle)
	srv.mu.Lock()
	srv.dialFails = 2 // the first reconnection attempts fail
	srv.mu.Unlock()
	srv.breakListeners()
	if got := r.next(t); got != (Change{Topic: TopicKeys, Resync: true}) {
		t.Fatalf("after reconnecting got %+v, want a Resync", got)
	}
	if err := p.Publish(context.Background(), Change{Topic: TopicKeys, Key: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got != (Change{Topic: TopicKeys, Key: "t"}) {
		t.Errorf("after reconnecting got %+v", got)
	}
}

func TestPostgresPublishRetriesOnce(t *testing.T) {
	srv := newFakeServer()
	p := startFake(t, srv)
	r := newRecorder()
	p.Subscribe("a", r.handle)
	srv.mu.Lock()
	srv.execFails = 1
	srv.mu.Unlock()
	if err := p.Publish(context.Background(), Change{Topic: "a", Key: "1"}); err != nil {
		t.Fatalf("one failure is retried: %v", err)
	}
	r.next(t)
	srv.mu.Lock()
	srv.execFails = 2
	srv.mu.Unlock()
	if err := p.Publish(context.Background(), Change{Topic: "a", Key: "2"}); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("two failures: %v", err)
	}
	if err := p.Publish(context.Background(), Change{Topic: "a", Key: "3"}); err != nil {
		t.Fatalf("after failures the next publish reconnects: %v", err)
	}
	if got := r.next(t); got.Key != "3" {
		t.Errorf("got %+v", got)
	}
}

func TestPostgresLifecycleErrors(t *testing.T) {
	if _, err := NewPostgres(newFakeServer().dial, PostgresOptions{Channel: "bad; DROP TABLE users"}); err == nil {
		t.Error("a channel that is not an identifier was accepted")
	}
	srv := newFakeServer()
	srv.dialFails = 1
	p, err := NewPostgres(srv.dial, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err == nil {
		t.Error("Start succeeded without a connection")
	}
	if err := p.Publish(context.Background(), Change{Topic: "a"}); err == nil {
		t.Error("Publish before Start succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q := startFake(t, newFakeServer())
	if err := q.Publish(context.Background(), Change{Topic: "A"}); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("invalid change: %v", err)
	}
	_ = q.Close()
	if err := q.Publish(context.Background(), Change{Topic: "a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}
