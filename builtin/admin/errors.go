package admin

import (
	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/internal/restapi"
)

// The input checks and error mapping shared with the other built-in JSON
// APIs.
var (
	// invalid returns an invalid_request error about one field.
	invalid = restapi.Invalid
	// storeError maps a store error to the API's error.
	storeError = restapi.StoreError
	// checkText validates free text: valid UTF-8, no control characters,
	// no surrounding white space, at most maxLen bytes.
	checkText = restapi.CheckText
	// checkEmail validates an optional plain email address.
	checkEmail = restapi.CheckEmail
)

// decode reads the request body as exactly one JSON object into v,
// refusing unknown fields, trailing data and non-JSON content types.
func decode(c *fiber.Ctx, v any) error {
	if err := restapi.CheckJSONBody(c); err != nil {
		return err
	}
	return restapi.DecodeJSON(c.Body(), v, true)
}
