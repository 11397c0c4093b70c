package scim

import (
	"github.com/latchid/latch/builtin/provision/outbox"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// Namespace is the plugin key-value namespace of the outbox of the
// instance with the default name (the module id); an instance with
// another name uses Namespace + "/" + its name. See package
// builtin/provision/outbox for the keys.
const Namespace = "latch.provision.scim"

// Options tune an Outbox (package builtin/provision/outbox).
type Options = outbox.Options

// Entry is one queued or dead change.
type Entry = provision.QueueEntry

// Outbox queues changes durably and delivers them (package
// builtin/provision/outbox).
type Outbox = outbox.Outbox

// Sink feeds an outbox from the audit event bus.
type Sink = outbox.Sink

// NewOutbox returns an outbox over st delivering to p, in Namespace
// unless opts names another.
func NewOutbox(st store.Store, p provision.Provisioner, opts Options) *Outbox {
	if opts.Namespace == "" {
		opts.Namespace = Namespace
	}
	if opts.Name == "" {
		opts.Name = string(ID)
	}
	return outbox.New(st, p, opts)
}
