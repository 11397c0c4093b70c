package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/latchid/latch/kernel/fault"
)

// ErrorBody is the JSON form of every error this server answers with
// outside a protocol that prescribes its own (OAuth2, SAML and SCIM front
// doors write their own forms).
type ErrorBody struct {
	// Code is a machine-readable code (kernel/fault codes: invalid_request,
	// not_found, conflict, ...).
	Code string `json:"code"`
	// Message says what went wrong in words safe to show a caller.
	Message string `json:"message"`
	// Field names the request field at fault, when there is one.
	Field string `json:"field,omitempty"`
	// RequestID joins the response to the server's logs.
	RequestID string `json:"request_id,omitempty"`
}

// handleError writes err as an ErrorBody. Causes behind a fault and
// unexpected errors are logged, never sent.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	// Errors raised before the middleware ran (a body over the limit) have
	// no request id yet.
	if RequestID(c) == "" {
		id := uuid.NewString()
		c.Locals(localRequestID, id)
		c.Set(HeaderRequestID, id)
	}
	body := ErrorBody{RequestID: RequestID(c)}
	var status int
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status = fe.Code
		body.Code, body.Message = fiberErrorCode(fe.Code), fiberErrorMessage(fe)
	} else {
		f := fault.From(err)
		status = fault.HTTPStatus(f.Code)
		body.Code, body.Message, body.Field = string(f.Code), f.Message, f.Field
		if f.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(f.RetryAfter.Seconds()+0.999)))
		}
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", body.RequestID, "path", c.Path(), "err", err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(body)
}

// fiberErrorCode names the errors fiber itself raises (no route, wrong
// method, body too large, ...).
func fiberErrorCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return string(fault.CodeNotFound)
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusRequestTimeout:
		return "timeout"
	}
	if status >= 500 {
		return string(fault.CodeInternal)
	}
	return string(fault.CodeInvalidRequest)
}

func fiberErrorMessage(fe *fiber.Error) string {
	switch fe.Code {
	case http.StatusNotFound:
		return "no such resource"
	case http.StatusMethodNotAllowed:
		return "method not allowed on this resource"
	case http.StatusRequestEntityTooLarge:
		return "request body is too large"
	}
	if fe.Code >= 500 {
		return "internal error"
	}
	return fe.Message
}
