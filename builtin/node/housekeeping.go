package node

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// housekeepingEvery is how often expired records are purged.
const housekeepingEvery = time.Minute

// startHousekeeping purges expired sessions, tokens and retired signing
// keys in the background until ctx is done; the returned channel closes
// when it has stopped. Each purge is one statement per table, so requests
// are never blocked behind it for long.
func (n *Node) startHousekeeping(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(housekeepingEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.purge(ctx)
			}
		}
	}()
	return done
}

func (n *Node) purge(ctx context.Context) {
	now := time.Now()
	if c, err := n.store.DeleteExpiredSessions(ctx, now); err != nil {
		n.log.WarnContext(ctx, "purging sessions", "err", err)
	} else if c > 0 {
		n.log.DebugContext(ctx, "purged expired sessions", "count", c)
	}
	if c, err := n.store.DeleteExpiredTokens(ctx, now); err != nil {
		n.log.WarnContext(ctx, "purging tokens", "err", err)
	} else if c > 0 {
		n.log.DebugContext(ctx, "purged expired tokens", "count", c)
	}
	if p, ok := n.store.(store.KVPurger); ok {
		if _, err := p.DeleteExpiredKV(ctx, now); err != nil {
			n.log.WarnContext(ctx, "purging plugin key-value entries", "err", err)
		}
	}
	if _, err := n.keys.Purge(ctx); err != nil {
		n.log.WarnContext(ctx, "purging signing keys", "err", err)
	}
}
