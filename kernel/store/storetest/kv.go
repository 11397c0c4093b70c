package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
)

func testPluginKV(t *testing.T, s store.Store) {
	ctx := t.Context()
	const p, tid = "throttle.local", "tenant-a"
	want := store.KVEntry{Key: "counter:alice", Value: []byte{0, 1, 2, 255}, ExpiresAt: hour()}
	ok(t, s.KVPut(ctx, p, tid, want), "KVPut")
	got, err := s.KVGet(ctx, p, tid, want.Key)
	ok(t, err, "KVGet")
	same(t, "KVGet", got, want)
	want.Value, want.ExpiresAt = []byte("replaced"), time.Time{}
	ok(t, s.KVPut(ctx, p, tid, want), "KVPut again")
	got, err = s.KVGet(ctx, p, tid, want.Key)
	ok(t, err, "KVGet")
	same(t, "KVGet after replacing", got, want)

	// Plugins and tenants have separate spaces.
	ok(t, s.KVPut(ctx, "other.plugin", tid, store.KVEntry{Key: want.Key, Value: []byte("other plugin")}), "KVPut")
	ok(t, s.KVPut(ctx, p, "tenant-b", store.KVEntry{Key: want.Key, Value: []byte("other tenant")}), "KVPut")
	got, err = s.KVGet(ctx, p, tid, want.Key)
	ok(t, err, "KVGet")
	same(t, "KVGet beside other spaces", got, want)
	got, err = s.KVGet(ctx, "other.plugin", tid, want.Key)
	ok(t, err, "KVGet")
	if string(got.Value) != "other plugin" {
		t.Errorf("KVGet of another plugin: got %q", got.Value)
	}
	_, err = s.KVGet(ctx, p, tid, "missing")
	is(t, err, store.ErrNotFound, "KVGet of a missing key")
	is(t, s.KVPut(ctx, p, tid, store.KVEntry{Value: []byte("x")}), store.ErrInvalid, "KVPut without a key")

	// Listing by prefix, in key order, paged; LIKE wildcards are literal.
	var users []string
	for i := range 7 {
		k := fmt.Sprintf("user:%02d", 6-i)
		users = append(users, k)
		ok(t, s.KVPut(ctx, p, tid, store.KVEntry{Key: k, Value: []byte(k)}), "KVPut "+k)
	}
	for _, k := range []string{"userx", "usr:1", "a%b", "a_c", "abc", "a%"} {
		ok(t, s.KVPut(ctx, p, tid, store.KVEntry{Key: k, Value: []byte(k)}), "KVPut "+k)
	}
	ok(t, s.KVPut(ctx, p, tid, store.KVEntry{Key: "user:99", Value: []byte("gone"), ExpiresAt: ago(time.Second)}), "KVPut expired")
	list := func(prefix string, limit int) []string {
		return collectPages(t, limit, func(pg store.Page) ([]store.KVEntry, string, error) {
			return s.KVList(ctx, p, tid, prefix, pg)
		}, func(e store.KVEntry) string { return e.Key })
	}
	for _, limit := range []int{0, 2, 7} {
		checkPaged(t, fmt.Sprintf("KVList user: by %d", limit), list("user:", limit), users)
	}
	checkPaged(t, "KVList a%", list("a%", 0), []string{"a%", "a%b"})
	checkPaged(t, "KVList a_", list("a_", 0), []string{"a_c"})
	checkPaged(t, "KVList of everything", list("", 3),
		append([]string{"a%", "a%b", "a_c", "abc", "counter:alice", "userx", "usr:1"}, users...))
	checkPaged(t, "KVList matching nothing", list("zzz", 0), nil)
	es, _, err := s.KVList(ctx, p, tid, "user:0", store.Page{Limit: 1})
	ok(t, err, "KVList")
	if len(es) != 1 || es[0].Key != "user:00" || string(es[0].Value) != "user:00" {
		t.Errorf("KVList user:0 limit 1: got %+v, want user:00 with its value", es)
	}

	// Expired entries are never returned.
	_, err = s.KVGet(ctx, p, tid, "user:99")
	is(t, err, store.ErrNotFound, "KVGet of an expired entry")
	ok(t, s.KVPut(ctx, p, tid, store.KVEntry{Key: "soon", Value: []byte("x"), ExpiresAt: time.Now().Add(time.Second)}), "KVPut")
	_, err = s.KVGet(ctx, p, tid, "soon")
	ok(t, err, "KVGet of an entry that has not expired yet")
	time.Sleep(1100 * time.Millisecond)
	_, err = s.KVGet(ctx, p, tid, "soon")
	is(t, err, store.ErrNotFound, "KVGet once the entry expired")
	if purger, ok2 := s.(store.KVPurger); ok2 {
		n, err := purger.DeleteExpiredKV(ctx, time.Now())
		ok(t, err, "DeleteExpiredKV")
		if n != 2 {
			t.Errorf("DeleteExpiredKV: removed %d, want 2", n)
		}
		n, err = purger.DeleteExpiredKV(ctx, time.Now())
		ok(t, err, "DeleteExpiredKV")
		if n != 0 {
			t.Errorf("DeleteExpiredKV twice: removed %d, want 0", n)
		}
	}
	// Writing over an expired entry revives the key.
	ok(t, s.KVPut(ctx, p, tid, store.KVEntry{Key: "user:99", Value: []byte("back")}), "KVPut over an expired key")
	got, err = s.KVGet(ctx, p, tid, "user:99")
	ok(t, err, "KVGet")
	if string(got.Value) != "back" || !got.ExpiresAt.IsZero() {
		t.Errorf("KVGet after KVPut over an expired key: got %+v", got)
	}

	ok(t, s.KVDelete(ctx, p, tid, want.Key), "KVDelete")
	_, err = s.KVGet(ctx, p, tid, want.Key)
	is(t, err, store.ErrNotFound, "KVGet after KVDelete")
	is(t, s.KVDelete(ctx, p, tid, want.Key), store.ErrNotFound, "KVDelete twice")
	got, err = s.KVGet(ctx, p, "tenant-b", want.Key)
	ok(t, err, "KVGet of another tenant after KVDelete")
	if string(got.Value) != "other tenant" {
		t.Errorf("KVGet of another tenant after KVDelete: got %q", got.Value)
	}
}
