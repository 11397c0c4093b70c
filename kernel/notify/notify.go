// Package notify is the cluster's change-notification bus: a node that
// changes something other nodes cache (a client, a tenant's signing keys,
// a deny policy, a bundle) publishes a Change after the store write has
// committed, and every node's subscribers to that topic hear it, within a
// second, and drop or reload what they cached.
//
// Delivery is best effort. A notification can be lost (a node's listening
// connection breaks; a subscriber falls too far behind), so the bus tells
// subscribers when that may have happened with a Change whose Resync is
// set, and also sends one every resync interval as a safety net: on Resync
// a subscriber reloads (or forgets) everything of its topic. A subscriber
// that follows this never serves a stale entry longer than the resync
// interval, and in the normal case no longer than a notification's trip.
//
// Two implementations:
//
//   - Local, in process: for one node (SQLite), and for tests.
//   - Postgres, over PostgreSQL LISTEN/NOTIFY: every node listens on one
//     channel of the shared database; Publish is pg_notify. It needs no
//     other service than the store a cluster already has.
//
// The lifecycle of a bus:
//
//  1. construct (NewLocal, NewPostgres);
//  2. Start (Postgres: connects and listens; an error means no bus);
//  3. Subscribe and Publish, from any goroutine;
//  4. Close, which stops delivery and waits for handlers to return.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Sentinel errors of this package. Check them with errors.Is.
var (
	// ErrInvalidChange means a Change's topic or key is malformed.
	ErrInvalidChange = errors.New("invalid change")
	// ErrClosed means the bus was closed.
	ErrClosed = errors.New("notification bus closed")
)

// Topics the kernel and the builtins publish. A topic names a kind of
// cached thing; Change.Key narrows it.
const (
	// TopicClients: a client was created, changed or deleted. Key: the
	// tenant id.
	TopicClients = "clients"
	// TopicKeys: a tenant's signing keys were rotated, prepared or
	// purged. Key: the tenant id.
	TopicKeys = "keys"
	// TopicTenants: a tenant was changed or deleted. Key: the tenant id.
	TopicTenants = "tenants"
	// TopicIdentityProviders: an upstream identity provider changed. Key:
	// the tenant id.
	TopicIdentityProviders = "idps"
	// TopicFlows: an authentication flow or adaptive script changed. Key:
	// the tenant id.
	TopicFlows = "flows"
	// TopicDenyPolicies: a gateway deny policy was added or removed. Key:
	// empty (the whole set).
	TopicDenyPolicies = "deny"
	// TopicBundles: a plugin bundle was installed, upgraded, rolled back
	// or removed. Key: the bundle name.
	TopicBundles = "bundles"
	// TopicClaimDialects: a local claim or a claim mapping of a tenant
	// was stored or removed. Key: the tenant id.
	TopicClaimDialects = "claims"
)

// Limits of a Change. PostgreSQL caps a notification's payload at 8000
// bytes; these keep a Change's encoding well under it.
const (
	MaxTopicLen = 64
	MaxKeyLen   = 1024
)

// topicRE is the form of a topic: lowercase letters, digits, '_', '-'
// and '.', starting with a letter.
var topicRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)

// Change says that something of Topic changed.
type Change struct {
	// Topic is the kind of thing that changed, e.g. TopicClients.
	Topic string
	// Key narrows the change within the topic (often a tenant id); empty
	// means anything of the topic.
	Key string
	// Resync is set (by the bus only) when changes of the topic may have
	// been missed: the subscriber must reload or forget everything of the
	// topic, not only Key. Key is empty then.
	Resync bool
}

// Validate reports whether c can be published: a topic of 1 to
// MaxTopicLen bytes of a-z, 0-9, '_', '-', '.' starting with a letter; a
// key of at most MaxKeyLen bytes; Resync unset.
func (c Change) Validate() error {
	switch {
	case len(c.Topic) == 0 || len(c.Topic) > MaxTopicLen || !topicRE.MatchString(c.Topic):
		return fmt.Errorf("%w: topic %q must be 1 to %d bytes of a-z, 0-9, '_', '-', '.', starting with a letter", ErrInvalidChange, c.Topic, MaxTopicLen)
	case len(c.Key) > MaxKeyLen:
		return fmt.Errorf("%w: key of topic %q is %d bytes, more than %d", ErrInvalidChange, c.Topic, len(c.Key), MaxKeyLen)
	case c.Resync:
		return fmt.Errorf("%w: Resync is set by the bus, not by publishers", ErrInvalidChange)
	}
	return nil
}

// Handler receives the changes of one subscription, one at a time and in
// the order they arrived, on a goroutine of the bus. It must not block
// for long: changes for the subscription queue up meanwhile, and past a
// limit they are replaced by one Resync.
type Handler func(ctx context.Context, c Change)

// Bus publishes changes to every node's subscribers.
type Bus interface {
	// Publish announces c to every subscriber of c.Topic on every node,
	// this one included. Call it after the change is committed to the
	// store, so a subscriber that reloads sees it.
	Publish(ctx context.Context, c Change) error
	// Subscribe calls h with every change of topic until the returned
	// function is called (it waits for a running h to return).
	Subscribe(topic string, h Handler) (unsubscribe func())
}

// wireChange is a Change's encoding in a notification payload.
type wireChange struct {
	Topic string `json:"t"`
	Key   string `json:"k,omitempty"`
}

// encode returns c's payload.
func encode(c Change) (string, error) {
	b, err := json.Marshal(wireChange{Topic: c.Topic, Key: c.Key})
	if err != nil {
		return "", fmt.Errorf("encoding change: %w", err)
	}
	return string(b), nil
}

// decode parses a payload written by encode, checking it as Publish
// would: notifications on the channel may come from anything that can
// connect to the database.
func decode(payload string) (Change, error) {
	var w wireChange
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return Change{}, fmt.Errorf("%w: decoding payload: %w", ErrInvalidChange, err)
	}
	c := Change{Topic: w.Topic, Key: w.Key}
	if err := c.Validate(); err != nil {
		return Change{}, err
	}
	return c, nil
}
