package admin

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The OpenAPI document is built from the route table and the Go types of the
// bodies, by reflection, once. Writing it by hand would let it drift from
// the code; no library derives OpenAPI from fiber routes without
// annotations, and this needs only the small subset below.

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
)

func (a *API) openAPI(c *fiber.Ctx) error {
	openAPIOnce.Do(func() { openAPIDoc = a.buildOpenAPI() })
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPIDoc)
}

var pathParam = regexp.MustCompile(`:([a-z]+)`)

// OpenAPIPath turns a fiber path ("/users/:id") into an OpenAPI path
// ("/users/{id}").
func OpenAPIPath(p string) string {
	return pathParam.ReplaceAllString(p, "{$1}")
}

func (a *API) buildOpenAPI() []byte {
	paths := map[string]map[string]any{}
	errorRef := map[string]any{"$ref": "#/components/schemas/Error"}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errorRef}}}
	}
	for _, rt := range a.table() {
		p := OpenAPIPath(rt.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": operationID(rt.method, rt.path),
			"tags":        []string{strings.Split(strings.TrimPrefix(rt.path, "/"), "/")[0]},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if rt.method == fiber.MethodGet && strings.HasPrefix(reflect.TypeOf(rt.out).Name(), "list[") {
			params = append(params,
				map[string]any{"name": "limit", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}},
				map[string]any{"name": "cursor", "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.in != nil {
			op["requestBody"] = map[string]any{
				"required": !optionalBody(rt.path),
				"content":  map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.in))}},
			}
		}
		ok := map[string]any{"description": "success"}
		if rt.out != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.out))}}
		}
		responses := map[string]any{
			itoa(rt.status): ok,
			"400":           errResp("invalid request"),
			"401":           errResp("missing or wrong admin credentials"),
			"403":           errResp("not an admin client"),
		}
		if strings.Contains(rt.path, ":") {
			responses["404"] = errResp("not found")
		}
		if rt.method == fiber.MethodPost || rt.method == fiber.MethodPatch {
			responses["409"] = errResp("conflicts with an existing record")
		}
		op["responses"] = responses
		paths[p][strings.ToLower(rt.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Latch admin API",
			"version":     "1",
			"description": "Administers tenants, users, groups, roles, clients, signing keys and the audit log. Routes act on the default tenant at " + BasePath + " and on tenant T at /t/T" + BasePath + " (tenants are managed at the root only).",
		},
		"servers":  []any{map[string]any{"url": BasePath}},
		"security": []any{map[string]any{"basic": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"basic": map[string]any{"type": "http", "scheme": "basic", "description": "client_id and client_secret of an admin client (scope " + ScopeAdmin + ")"},
			},
			"schemas": map[string]any{
				"Error": map[string]any{
					"type":     "object",
					"required": []string{"code", "message"},
					"properties": map[string]any{
						"code":       map[string]any{"type": "string", "description": "machine-readable error code"},
						"message":    map[string]any{"type": "string"},
						"field":      map[string]any{"type": "string", "description": "the request field at fault, when there is one"},
						"request_id": map[string]any{"type": "string"},
					},
				},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		// The document is built from static Go values; failing to encode
		// it is a programming error caught by the tests.
		panic(err)
	}
	return b
}

// optionalBody reports whether a route's body may be left out.
func optionalBody(path string) bool {
	return strings.HasSuffix(path, "/secret") || strings.HasSuffix(path, "/rotate")
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(path, "/") {
		if part == "" {
			continue
		}
		part = strings.TrimPrefix(part, ":")
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes t as a JSON Schema, following encoding/json's rules for
// field names and omitempty.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s := schemaOf(f.Type)
			props[name] = s
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	default:
		return map[string]any{}
	}
}
