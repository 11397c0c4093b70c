package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// MaxOpenAPIBytes bounds an imported OpenAPI document.
const MaxOpenAPIBytes = 4 << 20

// ErrInvalidOpenAPI wraps every error of an OpenAPI import; the message
// names the JSON pointer of the offending value.
var ErrInvalidOpenAPI = errors.New("invalid OpenAPI document")

// ImportOptions override what an OpenAPI document says.
type ImportOptions struct {
	// Name of the API; default x-latch-name, else the title in lower case.
	Name string
	// Upstream the API forwards to; default x-latch-upstream.
	Upstream string
	// BasePath of the API; default x-latch-base-path, else the path of the
	// first server URL, else "/".
	BasePath string
}

// The x-latch-* extensions an import reads, by where they may appear.
var (
	rootExtensions = []string{"x-latch-name", "x-latch-upstream", "x-latch-base-path", "x-latch-strip-base-path", "x-latch-auth",
		"x-latch-security", "x-latch-scopes", "x-latch-throttle", "x-latch-cors", "x-latch-policy", "x-latch-subscription", "x-latch-backend-jwt"}
	operationExtensions = []string{"x-latch-auth", "x-latch-scopes", "x-latch-throttle", "x-latch-policy", "x-latch-rewrite", "x-latch-security"}
	pathExtensions      = []string{}
)

// ImportOpenAPI turns an OpenAPI 3 document's paths and operations into an
// API: one route per operation (path templates match one segment per
// {param}), with the x-latch-* extensions of docs/gateway.md for the
// upstream, authentication, scopes, throttling, CORS and policies. The
// result is validated as a stored API would be (its upstream and issuers
// are checked when a gateway merges it).
func ImportOpenAPI(doc []byte, opts ImportOptions) (APIConfig, error) {
	var api APIConfig
	if len(doc) > MaxOpenAPIBytes {
		return api, fmt.Errorf("%w: larger than %d bytes", ErrInvalidOpenAPI, MaxOpenAPIBytes)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return api, fmt.Errorf("%w: %w", ErrInvalidOpenAPI, err)
	}
	if !strings.HasPrefix(t.OpenAPI, "3.") {
		return api, fmt.Errorf("%w: /openapi: %q is not an OpenAPI 3 version", ErrInvalidOpenAPI, t.OpenAPI)
	}
	if err := checkExtensions("", t.Extensions, rootExtensions); err != nil {
		return api, err
	}
	x := t.Extensions
	if err := ext(x, "", "x-latch-name", &api.Name); err != nil {
		return api, err
	}
	if api.Name == "" && t.Info != nil {
		api.Name = slug(t.Info.Title)
	}
	if opts.Name != "" {
		api.Name = opts.Name
	}
	if err := ext(x, "", "x-latch-upstream", &api.Upstream); err != nil {
		return api, err
	}
	if opts.Upstream != "" {
		api.Upstream = opts.Upstream
	}
	if api.Upstream == "" {
		return api, fmt.Errorf("%w: /x-latch-upstream: required (or pass the upstream to the import)", ErrInvalidOpenAPI)
	}
	if err := ext(x, "", "x-latch-base-path", &api.BasePath); err != nil {
		return api, err
	}
	if api.BasePath == "" && len(t.Servers) > 0 && t.Servers[0] != nil {
		if u, err := url.Parse(t.Servers[0].URL); err == nil && strings.HasPrefix(u.Path, "/") && !strings.Contains(u.Path, "{") {
			api.BasePath = u.Path
		}
	}
	if opts.BasePath != "" {
		api.BasePath = opts.BasePath
	}
	for _, e := range []struct {
		key string
		v   any
	}{
		{"x-latch-strip-base-path", &api.StripBasePath}, {"x-latch-security", &api.Security}, {"x-latch-throttle", &api.Throttle},
		{"x-latch-cors", &api.CORS}, {"x-latch-policy", &api.Policy}, {"x-latch-subscription", &api.Subscription},
		{"x-latch-backend-jwt", &api.BackendJWT}, {"x-latch-scopes", &api.Security.Scopes},
	} {
		if err := ext(x, "", e.key, e.v); err != nil {
			return api, err
		}
	}
	var auth string
	if err := ext(x, "", "x-latch-auth", &auth); err != nil {
		return api, err
	}
	switch auth {
	case "", "required":
	case "none":
		api.Security = SecurityConfig{None: true}
	default:
		return api, fmt.Errorf("%w: /x-latch-auth: must be \"required\" or \"none\"", ErrInvalidOpenAPI)
	}
	if t.Paths == nil || t.Paths.Len() == 0 {
		return api, fmt.Errorf("%w: /paths: the document has no operations", ErrInvalidOpenAPI)
	}
	names := map[string]string{}
	for _, p := range t.Paths.InMatchingOrder() {
		item := t.Paths.Value(p)
		pp := "/paths/" + pointerEscape(p)
		if item == nil {
			continue
		}
		if err := checkExtensions(pp, item.Extensions, pathExtensions); err != nil {
			return api, err
		}
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			op := ops[m]
			r, err := importOperation(t, api, p, m, op, pp+"/"+strings.ToLower(m))
			if err != nil {
				return api, err
			}
			if prev, ok := names[r.Name]; ok {
				return api, fmt.Errorf("%w: %s/operationId: %q is also the name of %s", ErrInvalidOpenAPI, pp+"/"+strings.ToLower(m), r.Name, prev)
			}
			names[r.Name] = pp + "/" + strings.ToLower(m)
			api.Routes = append(api.Routes, r)
		}
	}
	if len(api.Routes) == 0 {
		return api, fmt.Errorf("%w: /paths: the document has no operations", ErrInvalidOpenAPI)
	}
	b, err := yaml.Marshal(api)
	if err != nil {
		return api, fmt.Errorf("%w: %w", ErrInvalidOpenAPI, err)
	}
	if err := CheckDocument(KindAPI, b); err != nil {
		return api, fmt.Errorf("%w: the resulting API: %w", ErrInvalidOpenAPI, err)
	}
	return api, nil
}

func importOperation(t *openapi3.T, api APIConfig, path, method string, op *openapi3.Operation, ptr string) (RouteConfig, error) {
	r := RouteConfig{Name: op.OperationID, Path: path, Methods: []string{method}}
	if r.Name == "" {
		r.Name = method + " " + path
	}
	if !strings.HasPrefix(path, "/") {
		return r, fmt.Errorf("%w: %s: a path must start with '/'", ErrInvalidOpenAPI, ptr)
	}
	if err := checkExtensions(ptr, op.Extensions, operationExtensions); err != nil {
		return r, err
	}
	x := op.Extensions
	for _, e := range []struct {
		key string
		v   any
	}{{"x-latch-throttle", &r.Throttle}, {"x-latch-policy", &r.Policy}, {"x-latch-rewrite", &r.Rewrite}, {"x-latch-security", &r.Security}} {
		if err := ext(x, ptr, e.key, e.v); err != nil {
			return r, err
		}
	}
	if r.Throttle != nil {
		if err := validateThrottle(ptr+"/x-latch-throttle", r.Throttle); err != nil {
			return r, fmt.Errorf("%w: %w", ErrInvalidOpenAPI, err)
		}
	}
	if _, err := compilePolicy(r.Policy); err != nil {
		return r, fmt.Errorf("%w: %s/x-latch-policy: %w", ErrInvalidOpenAPI, ptr, err)
	}
	var scopes []string
	hasScopes := x["x-latch-scopes"] != nil
	if err := ext(x, ptr, "x-latch-scopes", &scopes); err != nil {
		return r, err
	}
	reqs := t.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if !hasScopes && len(reqs) > 0 {
		for _, ss := range reqs[0] {
			for _, s := range ss {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
	}
	var auth string
	if err := ext(x, ptr, "x-latch-auth", &auth); err != nil {
		return r, err
	}
	open := op.Security != nil && len(*op.Security) == 0 // security: [] in OpenAPI: no authentication
	switch auth {
	case "":
	case "none":
		open = true
	case "required":
		open = false
		if api.Security.None && r.Security == nil {
			r.Security = &SecurityConfig{}
		}
	default:
		return r, fmt.Errorf("%w: %s/x-latch-auth: must be \"required\" or \"none\"", ErrInvalidOpenAPI, ptr)
	}
	if open {
		if len(scopes) > 0 && hasScopes {
			return r, fmt.Errorf("%w: %s/x-latch-scopes: an operation without authentication cannot require scopes", ErrInvalidOpenAPI, ptr)
		}
		r.Security = &SecurityConfig{None: true}
		return r, nil
	}
	r.Scopes = scopes
	return r, nil
}

// checkExtensions refuses x-latch-* keys that are not allowed at ptr, so
// that a misspelled extension is an error, not a silent no-op.
func checkExtensions(ptr string, x map[string]any, allowed []string) error {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(strings.ToLower(k), "x-latch") && !slices.Contains(allowed, k) {
			return fmt.Errorf("%w: %s/%s: unknown extension here (allowed: %s)", ErrInvalidOpenAPI, ptr, pointerEscape(k), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// ext decodes the extension key of x (at ptr) into v, strictly; a missing
// extension leaves v alone.
func ext(x map[string]any, ptr, key string, v any) error {
	raw, ok := x[key]
	if !ok || raw == nil {
		return nil
	}
	b, err := yaml.Marshal(raw)
	if err != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrInvalidOpenAPI, ptr, key, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrInvalidOpenAPI, ptr, key, err)
	}
	return nil
}

// pointerEscape escapes one JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

var slugRe = regexp.MustCompile(`[^a-z0-9_.-]+`)

func slug(s string) string {
	s = strings.Trim(slugRe.ReplaceAllString(strings.ToLower(s), "-"), "-._")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}
