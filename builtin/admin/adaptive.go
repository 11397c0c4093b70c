package admin

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/fault"
)

// Adaptive runs adaptive scripts for the try-it endpoint
// (*adaptive.Engine).
type Adaptive interface {
	TryItJSON(ctx context.Context, body []byte) ([]byte, error)
}

// tryAdaptiveScript runs a script against a synthetic login and returns
// the decisions it took (builtin/adaptive TryItRequest and TryItResult).
func (a *API) tryAdaptiveScript(c *fiber.Ctx) error {
	if a.d.Adaptive == nil {
		return fault.Unsupported.WithMessage("this server has no adaptive script engine")
	}
	out, err := a.d.Adaptive.TryItJSON(c.UserContext(), c.Body())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(out)
}

// listAdaptiveTemplates lists the ready-made scripts.
func (a *API) listAdaptiveTemplates(c *fiber.Ctx) error {
	return c.JSON(newList(adaptive.Templates(), ""))
}
