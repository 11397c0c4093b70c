package provision

import (
	"context"
	"time"

	"github.com/latchid/latch/kernel/store"
)

// QueueEntry is one change waiting in a provisioner's durable queue, or
// one that failed for good (a dead letter).
type QueueEntry struct {
	// ID names the entry within its list (pending or dead letters); it
	// sorts in the order the changes were made.
	ID string `json:"id,omitempty"`
	// Key is the entry's key in the queue's storage.
	Key string `json:"-"`
	// EventID stays the same on every delivery of the change, so a
	// target can drop repeats.
	EventID string `json:"event_id"`
	// Resource is abi.ResourceUser or abi.ResourceGroup; ResourceID the
	// local record's id.
	Resource   string `json:"resource"`
	ResourceID string `json:"resource_id"`
	// Attempts counts failed deliveries.
	Attempts int `json:"attempts"`
	// NextAt is when the next delivery is due.
	NextAt time.Time `json:"next_at"`
	// LastError says why the last delivery failed, in words safe to show.
	LastError string    `json:"last_error,omitempty"`
	QueuedAt  time.Time `json:"queued_at"`
	// DeadAt is when the change became a dead letter.
	DeadAt time.Time `json:"dead_at,omitzero"`
}

// Queue is an optional interface of provisioner instances that deliver
// through a durable queue (found by type assertion). The admin API shows
// and operates it. tenantID is the tenant's id; an unknown entry is
// store.ErrNotFound.
type Queue interface {
	// ListPending lists one page of changes still to deliver, in order.
	ListPending(ctx context.Context, tenantID string, p store.Page) ([]QueueEntry, string, error)
	// ListDeadLetters lists one page of changes that failed for good.
	ListDeadLetters(ctx context.Context, tenantID string, p store.Page) ([]QueueEntry, string, error)
	// Retry puts one dead letter back into the queue with a fresh attempt
	// count.
	Retry(ctx context.Context, tenantID, id string) error
	// RetryAll puts every dead letter of the tenant back and returns how
	// many.
	RetryAll(ctx context.Context, tenantID string) (int, error)
	// Discard deletes one dead letter for good.
	Discard(ctx context.Context, tenantID, id string) error
}
