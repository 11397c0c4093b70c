// Package restapi holds the input checks and error mapping the built-in
// JSON APIs (the admin API, the self-service /api/me) share, so both
// refuse bad input with the same invalid_request errors.
package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// MaxEmailLen is the longest email address accepted: RFC 5321's path
// limit.
const MaxEmailLen = 254

// Invalid returns an invalid_request error about one field.
func Invalid(field, format string, args ...any) error {
	return fault.New(fault.CodeInvalidRequest, field+": "+fmt.Sprintf(format, args...)).WithField(field)
}

// StoreError maps a store error to the API's error about what.
func StoreError(what string, err error) error {
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

// CheckText validates free text: valid UTF-8, no control characters, no
// surrounding white space, at most maxLen bytes.
func CheckText(field, v string, maxLen int) error {
	if len(v) > maxLen {
		return Invalid(field, "must be at most %d bytes", maxLen)
	}
	if !utf8.ValidString(v) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.TrimSpace(v) != v {
		return Invalid(field, "must not start or end with white space")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// CheckEmail validates an optional plain email address (no display name),
// at most MaxEmailLen bytes.
func CheckEmail(field, v string) error {
	if v == "" {
		return nil
	}
	if len(v) > MaxEmailLen {
		return Invalid(field, "must be at most %d bytes", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || addr.Name != "" {
		return Invalid(field, "must be a plain email address like alice@example.com")
	}
	return nil
}

// CheckJSONBody refuses a request whose content type is set and is not
// application/json (415), and an empty body.
func CheckJSONBody(c *fiber.Ctx) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != "" && ct != fiber.MIMEApplicationJSON {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "content type must be application/json")
	}
	if len(bytes.TrimSpace(c.Body())) == 0 {
		return fault.New(fault.CodeInvalidRequest, "request body is empty; a JSON object is required")
	}
	return nil
}

// DecodeJSON reads body as exactly one JSON value into v, refusing
// trailing data and, when strict, unknown fields. Its errors are
// invalid_request errors that name the problem (and the field, where there
// is one) without echoing large input back.
func DecodeJSON(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fault.New(fault.CodeInvalidRequest, "malformed JSON: unexpected data after the object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fault.New(fault.CodeInvalidRequest, fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		if typ.Field != "" {
			return Invalid(typ.Field, "must be %s", jsonKind(typ.Type.Kind().String()))
		}
		return fault.New(fault.CodeInvalidRequest, "body must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fault.New(fault.CodeInvalidRequest, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fault.New(fault.CodeInvalidRequest, "unknown field "+quoted).WithField(strings.Trim(quoted, `"`))
	default:
		return fault.New(fault.CodeInvalidRequest, "malformed JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	default:
		return "of another type"
	}
}

// ValidTenantName reports whether name can appear in a path: 1..63 of
// [a-z0-9-], not starting or ending with '-' (a DNS label, so a tenant name
// can also become a host name).
func ValidTenantName(name string) bool {
	if name == "" || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch ch := name[i]; {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-':
		default:
			return false
		}
	}
	return true
}

// TenantGetter is the part of the store NamedTenant reads.
type TenantGetter interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
}

// NamedTenant returns the tenant a route's path names: a malformed name,
// an unknown tenant and a disabled one are all "tenant not found".
func NamedTenant(ctx context.Context, st TenantGetter, name string) (store.Tenant, error) {
	notFound := fault.New(fault.CodeNotFound, "tenant not found")
	if !ValidTenantName(name) {
		return store.Tenant{}, notFound
	}
	t, err := st.GetTenantByName(ctx, name)
	if err != nil {
		return store.Tenant{}, StoreError("tenant", err)
	}
	if !t.Enabled {
		return store.Tenant{}, notFound
	}
	return t, nil
}

// UseDefaultTenant is middleware: it puts the default tenant into
// c.Locals(key) and runs the next handler.
func UseDefaultTenant(c *fiber.Ctx, st TenantGetter, key string) error {
	t, err := st.GetTenantByName(c.UserContext(), store.DefaultTenantName)
	if err != nil {
		return StoreError("tenant", err)
	}
	c.Locals(key, t)
	return c.Next()
}

// UsePathTenant is middleware: it puts the tenant the path parameter
// "tenant" names (see NamedTenant) into c.Locals(key) and runs the next
// handler.
func UsePathTenant(c *fiber.Ctx, st TenantGetter, key string) error {
	t, err := NamedTenant(c.UserContext(), st, c.Params("tenant"))
	if err != nil {
		return err
	}
	c.Locals(key, t)
	return c.Next()
}
