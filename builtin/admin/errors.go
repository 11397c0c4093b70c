package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// invalid returns an invalid_request error about one field.
func invalid(field, format string, args ...any) error {
	return fault.New(fault.CodeInvalidRequest, field+": "+fmt.Sprintf(format, args...)).WithField(field)
}

// storeError maps a store error to the API's error.
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fault.New(fault.CodeNotFound, what+" not found")
	case errors.Is(err, store.ErrConflict):
		return fault.New(fault.CodeConflict, what+" already exists")
	case errors.Is(err, store.ErrVersionMismatch):
		return fault.New(fault.CodePreconditionFailed, what+" was changed by another request; fetch it again")
	case errors.Is(err, store.ErrInvalid):
		return fault.New(fault.CodeInvalidRequest, what+" is invalid")
	default:
		return fault.New(fault.CodeInternal, "internal error").WithCause(fmt.Errorf("storing %s: %w", what, err))
	}
}

// decode reads the request body as exactly one JSON object into v,
// refusing unknown fields, trailing data and non-JSON content types.
func decode(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != "" && ct != fiber.MIMEApplicationJSON {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "content type must be application/json")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.New(fault.CodeInvalidRequest, "request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fault.New(fault.CodeInvalidRequest, describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fault.New(fault.CodeInvalidRequest, "malformed JSON: unexpected data after the object")
	}
	return nil
}

// describeJSONError turns a decoding error into a message that names the
// problem without echoing large input back.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s: must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return "body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "int32", "uint32", "float64":
		return "a number"
	default:
		return "of another type"
	}
}
