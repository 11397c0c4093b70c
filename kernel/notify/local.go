package notify

import (
	"context"
	"log/slog"
)

// Local is the in-process Bus: changes reach the subscribers of this
// process only. It is the bus of a single node, and of tests.
type Local struct {
	hub *hub
}

// NewLocal returns an in-process bus. log receives handler panics; nil
// means slog.Default().
func NewLocal(log *slog.Logger) *Local {
	return &Local{hub: newHub(log)}
}

// Publish hands c to the subscribers of c.Topic.
func (l *Local) Publish(ctx context.Context, c Change) error {
	if err := c.Validate(); err != nil {
		return err
	}
	l.hub.mu.Lock()
	closed := l.hub.closed
	l.hub.mu.Unlock()
	if closed {
		return ErrClosed
	}
	l.hub.deliver(c)
	return nil
}

// Subscribe calls h with every change of topic until unsubscribe is
// called.
func (l *Local) Subscribe(topic string, h Handler) (unsubscribe func()) {
	return l.hub.subscribe(topic, h)
}

// Resync sends every subscriber a Resync change, as the periodic safety
// net of a cluster bus would.
func (l *Local) Resync() { l.hub.resyncAll() }

// Close stops delivery and waits for running handlers.
func (l *Local) Close() error {
	l.hub.close()
	return nil
}

var _ Bus = (*Local)(nil)
