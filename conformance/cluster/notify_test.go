package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/kernel/notify"
	"github.com/latchid/latch/kernel/store/postgres"
)

// storeDialer returns the dialer the node uses for its change bus: the
// PostgreSQL store's (kernel/store/postgres), on dsn.
func storeDialer(t *testing.T, dsn string) notify.Dialer {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st.NotifyDialer()
}

// listenerPIDs returns the pids of the sessions of database dbName whose
// last statement was a LISTEN.
func listenerPIDs(t *testing.T, conn *pgx.Conn, dbName string) []int32 {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'`, dbName)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// TestNotifyPostgres runs the change-notification bus of two "nodes" on
// the real PostgreSQL: a change published on one reaches the other's
// subscribers (and its own); when the server ends a node's listening
// session, the node reconnects, tells its subscribers to resync, and
// hears later changes again.
func TestNotifyPostgres(t *testing.T) {
	base := postgresDSN(t)
	dsn := freshDatabase(t, base)
	ctx := context.Background()
	dialer := storeDialer(t, dsn)
	start := func() *notify.Postgres {
		p, err := notify.NewPostgres(dialer, notify.PostgresOptions{ResyncInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	a, b := start(), start()
	gotA, gotB := make(chan notify.Change, 16), make(chan notify.Change, 16)
	a.Subscribe(notify.TopicClients, func(_ context.Context, c notify.Change) { gotA <- c })
	b.Subscribe(notify.TopicClients, func(_ context.Context, c notify.Change) { gotB <- c })
	next := func(ch chan notify.Change, who string) notify.Change {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("%s heard nothing", who)
			return notify.Change{}
		}
	}

	sent := time.Now()
	want := notify.Change{Topic: notify.TopicClients, Key: "tenant-1"}
	if err := a.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := next(gotB, "the other node"); got != want {
		t.Errorf("the other node heard %+v", got)
	}
	t.Logf("a change published on one node reached the other after %s", time.Since(sent))
	if got := next(gotA, "the publishing node"); got != want {
		t.Errorf("the publishing node heard %+v", got)
	}

	// The server ends b's listening session.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(ctx) }()
	var dbName string
	if err := admin.QueryRow(ctx, "SELECT current_database()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	pids := listenerPIDs(t, admin, dbName)
	if len(pids) != 2 {
		t.Fatalf("%d listening sessions, want 2", len(pids))
	}
	for _, pid := range pids {
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []struct {
		ch  chan notify.Change
		who string
	}{{gotA, "node a"}, {gotB, "node b"}} {
		if got := next(w.ch, w.who); got != (notify.Change{Topic: notify.TopicClients, Resync: true}) {
			t.Fatalf("%s after losing its session heard %+v, want a Resync", w.who, got)
		}
	}
	want = notify.Change{Topic: notify.TopicClients, Key: "tenant-2"}
	if err := b.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := next(gotA, "node a after reconnecting"); got != want {
		t.Errorf("node a heard %+v", got)
	}
}
