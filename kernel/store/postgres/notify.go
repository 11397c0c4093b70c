package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/latchid/latch/kernel/notify"
)

// NotifyDialer returns a dialer of dedicated sessions to the store's
// database, with the pool's connection settings (host, credentials, TLS,
// run-time parameters), for the cluster's change-notification bus
// (notify.NewPostgres): LISTEN needs a session of its own, outside the
// pool.
func (s *Store) NotifyDialer() notify.Dialer {
	cc := s.pool.Config().ConnConfig
	return func(ctx context.Context) (notify.Conn, error) {
		c, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err != nil {
			return nil, fmt.Errorf("connecting to postgres: %w", err)
		}
		return notifyConn{c}, nil
	}
}

// NotifyChannel returns the NOTIFY channel of the cluster whose schema
// the store uses: notify.DefaultChannel in the schema "public", and
// notify.DefaultChannel followed by a hash of the schema's name in any
// other, so that clusters sharing one database in different schemas do
// not hear each other's changes.
func (s *Store) NotifyChannel(ctx context.Context) (string, error) {
	var schema *string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("reading the current schema: %w", err)
	}
	if schema == nil || *schema == "public" {
		return notify.DefaultChannel, nil
	}
	sum := sha256.Sum256([]byte(*schema))
	return notify.DefaultChannel + "_" + hex.EncodeToString(sum[:8]), nil
}

// notifyConn adapts a pgx connection to notify.Conn.
type notifyConn struct{ c *pgx.Conn }

func (n notifyConn) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := n.c.Exec(ctx, sql, args...)
	return err
}

func (n notifyConn) WaitForNotification(ctx context.Context) (channel, payload string, err error) {
	note, err := n.c.WaitForNotification(ctx)
	if err != nil {
		return "", "", err
	}
	return note.Channel, note.Payload, nil
}

func (n notifyConn) Close(ctx context.Context) error { return n.c.Close(ctx) }

var _ notify.Conn = notifyConn{}
