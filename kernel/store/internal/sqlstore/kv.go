package sqlstore

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// KVGet returns the entry unless it has expired.
func (s *Store) KVGet(ctx context.Context, plugin, tenantID, key string) (store.KVEntry, error) {
	var e store.KVEntry
	err := s.read().QueryRow(ctx, `SELECT entry_key, value, expires_at FROM plugin_kv
		WHERE plugin = $1 AND tenant_id = $2 AND entry_key = $3 AND `+notExpired("$4"),
		plugin, tenantID, key, now()).Scan(&e.Key, &e.Value, timeDst(&e.ExpiresAt))
	if err != nil {
		return store.KVEntry{}, s.fail("getting plugin value", err)
	}
	return e, nil
}

// KVPut creates or replaces the entry.
func (s *Store) KVPut(ctx context.Context, plugin, tenantID string, e store.KVEntry) error {
	if err := checkKV(plugin, e.Key); err != nil {
		return s.fail("putting plugin value", err)
	}
	err := s.write(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO plugin_kv (plugin, tenant_id, entry_key, value, expires_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (plugin, tenant_id, entry_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
			plugin, tenantID, e.Key, e.Value, ts(e.ExpiresAt))
		return err
	})
	if err != nil {
		return s.fail("putting plugin value", err)
	}
	return nil
}

// KVDelete removes the entry.
func (s *Store) KVDelete(ctx context.Context, plugin, tenantID, key string) error {
	err := s.write(ctx, func(q Querier) error {
		return mustChange(q.Exec(ctx, `DELETE FROM plugin_kv WHERE plugin = $1 AND tenant_id = $2 AND entry_key = $3`,
			plugin, tenantID, key))
	})
	if err != nil {
		return s.fail("deleting plugin value", err)
	}
	return nil
}

// KVList lists the entries whose key starts with prefix and that have not
// expired, ordered by key (byte-wise).
func (s *Store) KVList(ctx context.Context, plugin, tenantID, prefix string, p store.Page) ([]store.KVEntry, string, error) {
	p = p.Normalize()
	es, err := collect(ctx, s.read(), func(r Row) (store.KVEntry, error) {
		var e store.KVEntry
		err := r.Scan(&e.Key, &e.Value, timeDst(&e.ExpiresAt))
		return e, err
	}, `SELECT entry_key, value, expires_at FROM plugin_kv
		WHERE plugin = $1 AND tenant_id = $2 AND entry_key >= $3 AND substr(entry_key, 1, length($3)) = $3
		AND entry_key > $4 AND `+notExpired("$5")+` ORDER BY entry_key LIMIT $6`,
		plugin, tenantID, prefix, p.After, now(), p.Limit+1)
	if err != nil {
		return nil, "", s.fail("listing plugin values", err)
	}
	es, next := page(es, p.Limit, func(e store.KVEntry) string { return e.Key })
	return es, next, nil
}

// DeleteExpiredKV removes plugin key-value entries that expired before t and
// returns how many it removed. It implements store.KVPurger.
func (s *Store) DeleteExpiredKV(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM plugin_kv WHERE expires_at < $1`, norm(t))
		return err
	})
	if err != nil {
		return 0, s.fail("deleting expired plugin values", err)
	}
	return int(n), nil
}
