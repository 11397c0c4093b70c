package admin

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// Audit actions of the provisioning routes.
const (
	ActionProvisionRetry   event.Action = "provision.retry"
	ActionProvisionDiscard event.Action = "provision.discard"
)

// ProvisioningQueue is one provisioner instance and its durable queue.
type ProvisioningQueue struct {
	// Name is the instance name; Module its module id.
	Name, Module string
	Queue        provision.Queue
}

// Provisioners lists the node's provisioner instances that deliver
// through a durable queue, sorted by name.
type Provisioners interface {
	ProvisioningQueues() []ProvisioningQueue
}

type provisionerJSON struct {
	Name   string `json:"name"`
	Module string `json:"module"`
	// Pending and DeadLetters count the tenant's entries (up to 10,000
	// each; more shows as 10000).
	Pending     int `json:"pending"`
	DeadLetters int `json:"dead_letters"`
}

type retryAllJSON struct {
	Retried int `json:"retried"`
}

// maxCount bounds the counting of queue entries per request.
const maxCount = 10 * store.MaxPageLimit

func (a *API) queue(c *fiber.Ctx) (ProvisioningQueue, error) {
	if a.d.Provisioners == nil {
		return ProvisioningQueue{}, fault.New(fault.CodeNotFound, "provisioner not found")
	}
	name := c.Params("name")
	for _, q := range a.d.Provisioners.ProvisioningQueues() {
		if q.Name == name {
			return q, nil
		}
	}
	return ProvisioningQueue{}, fault.New(fault.CodeNotFound, "provisioner not found")
}

// count pages through a listing, up to maxCount.
func count(list func(store.Page) ([]provision.QueueEntry, string, error)) (int, error) {
	n := 0
	p := store.Page{Limit: store.MaxPageLimit}
	for n < maxCount {
		es, next, err := list(p)
		if err != nil {
			return 0, err
		}
		n += len(es)
		if next == "" {
			break
		}
		p.After = next
	}
	return min(n, maxCount), nil
}

// listProvisioners shows every provisioner with a queue and the tenant's
// counts of pending changes and dead letters.
func (a *API) listProvisioners(c *fiber.Ctx) error {
	out := []provisionerJSON{}
	if a.d.Provisioners == nil {
		return c.JSON(newList(out, ""))
	}
	t := tenantOf(c)
	ctx := c.UserContext()
	for _, q := range a.d.Provisioners.ProvisioningQueues() {
		pending, err := count(func(p store.Page) ([]provision.QueueEntry, string, error) { return q.Queue.ListPending(ctx, t.ID, p) })
		if err != nil {
			return queueError(err)
		}
		dead, err := count(func(p store.Page) ([]provision.QueueEntry, string, error) {
			return q.Queue.ListDeadLetters(ctx, t.ID, p)
		})
		if err != nil {
			return queueError(err)
		}
		out = append(out, provisionerJSON{Name: q.Name, Module: q.Module, Pending: pending, DeadLetters: dead})
	}
	return c.JSON(newList(out, ""))
}

func queueError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.CodeNotFound, "dead letter not found")
	}
	return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("reading the provisioning queue: %w", err))
}

func (a *API) listQueue(dead bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q, err := a.queue(c)
		if err != nil {
			return err
		}
		p, err := page(c)
		if err != nil {
			return err
		}
		list := q.Queue.ListPending
		if dead {
			list = q.Queue.ListDeadLetters
		}
		es, next, err := list(c.UserContext(), tenantOf(c).ID, p)
		if err != nil {
			return queueError(err)
		}
		return c.JSON(newList(es, next))
	}
}

// retryDeadLetter puts one dead letter back into the queue.
func (a *API) retryDeadLetter(c *fiber.Ctx) error {
	q, err := a.queue(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	id := c.Params("id")
	if err := q.Queue.Retry(c.UserContext(), t.ID, id); err != nil {
		return queueError(err)
	}
	a.audit(c, t.ID, ActionProvisionRetry, "provisioner:"+q.Name, store.OutcomeSuccess, map[string]any{"dead_letter": id})
	return c.SendStatus(fiber.StatusNoContent)
}

// retryAllDeadLetters puts every dead letter of the tenant back.
func (a *API) retryAllDeadLetters(c *fiber.Ctx) error {
	q, err := a.queue(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	n, err := q.Queue.RetryAll(c.UserContext(), t.ID)
	if err != nil {
		return queueError(err)
	}
	a.audit(c, t.ID, ActionProvisionRetry, "provisioner:"+q.Name, store.OutcomeSuccess, map[string]any{"retried": n})
	return c.JSON(retryAllJSON{Retried: n})
}

// discardDeadLetter deletes one dead letter for good.
func (a *API) discardDeadLetter(c *fiber.Ctx) error {
	q, err := a.queue(c)
	if err != nil {
		return err
	}
	t := tenantOf(c)
	id := c.Params("id")
	if err := q.Queue.Discard(c.UserContext(), t.ID, id); err != nil {
		return queueError(err)
	}
	a.audit(c, t.ID, ActionProvisionDiscard, "provisioner:"+q.Name, store.OutcomeSuccess, map[string]any{"dead_letter": id})
	return c.SendStatus(fiber.StatusNoContent)
}
