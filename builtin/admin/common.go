package admin

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/internal/restapi"
	"github.com/latchid/latch/builtin/server"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// Field limits. They keep single records small and bound the work any one
// request can cause.
const (
	maxNameLen       = 128
	maxTextLen       = 1024
	maxEmailLen      = restapi.MaxEmailLen
	maxListItems     = 100
	maxAttributes    = 64
	maxAttributeJSON = 16 << 10
	maxURILen        = 2048
)

// list is the JSON shape of every listing.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, NextCursor: next}
}

// page reads ?limit= and ?cursor=.
func page(c *fiber.Ctx) (store.Page, error) {
	p := store.Page{After: c.Query("cursor")}
	if len(p.After) > maxNameLen {
		return p, invalid("cursor", "is not a cursor this API returned")
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageLimit {
			return p, invalid("limit", "must be a whole number from 1 to %d", store.MaxPageLimit)
		}
		p.Limit = n
	}
	return p.Normalize(), nil
}

// audit publishes an event about the request c serves.
func (a *API) audit(c *fiber.Ctx, tenantID string, action event.Action, target, outcome string, detail map[string]any) {
	if tenantID == "" {
		tenantID = tenantOf(c).ID
	}
	actor := actorOf(c)
	if actor == "" {
		actor = "anonymous"
	}
	a.d.Audit.Publish(event.Event{
		Tenant:    tenantID,
		Time:      a.d.Now().UTC(),
		RequestID: server.RequestID(c),
		Actor:     actor,
		Action:    action,
		Target:    target,
		Outcome:   outcome,
		Detail:    detail,
	})
}

// checkName validates a required identifier-like field: 1..maxNameLen
// bytes of printable UTF-8 without surrounding white space.
func checkName(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if len(v) > maxNameLen {
		return invalid(field, "must be at most %d bytes", maxNameLen)
	}
	return checkText(field, v, maxNameLen)
}

// checkList validates a list of short strings.
func checkList(field string, vs []string, check func(string, string) error) error {
	if len(vs) > maxListItems {
		return invalid(field, "must have at most %d items", maxListItems)
	}
	for i, v := range vs {
		if err := check(fmt.Sprintf("%s[%d]", field, i), v); err != nil {
			return err
		}
	}
	return nil
}

// checkAttributes bounds a free-form JSON object.
func checkAttributes(field string, m map[string]any) error {
	if len(m) > maxAttributes {
		return invalid(field, "must have at most %d keys", maxAttributes)
	}
	for k := range m {
		if err := checkName(field+"."+k, k); err != nil {
			return invalid(field, "keys must be 1 to %d printable bytes", maxNameLen)
		}
	}
	if n := jsonSize(m); n > maxAttributeJSON {
		return invalid(field, "must be at most %d bytes of JSON", maxAttributeJSON)
	}
	return nil
}
