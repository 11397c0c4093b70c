package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig lets browsers call an API from other origins. The gateway
// answers preflight requests itself (the upstream never sees them) and
// adds the CORS response headers to every answer for an allowed origin; an
// origin that is not allowed gets no CORS headers at all, so the browser
// refuses the response.
type CORSConfig struct {
	// AllowOrigins are the allowed origins: exact ("https://app.example.com"),
	// a pattern where "*" stands for one DNS label
	// ("https://*.example.com"), or "*" for any origin (not with
	// allow_credentials).
	AllowOrigins []string `yaml:"allow_origins,omitempty"`
	// AllowMethods are the methods a preflight may ask for. Default GET,
	// HEAD, POST.
	AllowMethods []string `yaml:"allow_methods,omitempty"`
	// AllowHeaders are the request headers a preflight may ask for; "*"
	// allows any.
	AllowHeaders []string `yaml:"allow_headers,omitempty"`
	// ExposeHeaders are the response headers scripts may read.
	ExposeHeaders []string `yaml:"expose_headers,omitempty"`
	// AllowCredentials lets the browser send cookies and read the answer
	// of credentialed requests.
	AllowCredentials bool `yaml:"allow_credentials,omitempty"`
	// MaxAge is how long a browser may cache a preflight answer; 0 sends
	// no Access-Control-Max-Age.
	MaxAge time.Duration `yaml:"max_age,omitempty"`
}

func (c *CORSConfig) validate(path string) error {
	if c == nil {
		return nil
	}
	if len(c.AllowOrigins) == 0 {
		return fmt.Errorf("%s.allow_origins: at least one origin is required", path)
	}
	for i, o := range c.AllowOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return fmt.Errorf("%s.allow_origins[%d]: \"*\" cannot be combined with allow_credentials; list the origins", path, i)
			}
			continue
		}
		if _, err := originPattern(o); err != nil {
			return fmt.Errorf("%s.allow_origins[%d]: %w", path, i, err)
		}
	}
	if len(c.AllowMethods) == 0 {
		c.AllowMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	for i, m := range c.AllowMethods {
		if !headerRe.MatchString(m) || strings.ToUpper(m) != m {
			return fmt.Errorf("%s.allow_methods[%d]: %q is not an upper-case HTTP method", path, i, m)
		}
	}
	for i, h := range c.AllowHeaders {
		if h != "*" && !headerRe.MatchString(h) {
			return fmt.Errorf("%s.allow_headers[%d]: %q is not a header name", path, i, h)
		}
	}
	for i, h := range c.ExposeHeaders {
		if !headerRe.MatchString(h) {
			return fmt.Errorf("%s.expose_headers[%d]: %q is not a header name", path, i, h)
		}
	}
	if c.MaxAge < 0 || c.MaxAge > 24*time.Hour {
		return fmt.Errorf("%s.max_age: must be between 0 and 24h", path)
	}
	return nil
}

var originRe = regexp.MustCompile(`^https?://[a-z0-9*.-]+(:[0-9]{1,5})?$`)

// originPattern compiles an allowed origin: exact, or with "*" standing
// for one DNS label.
func originPattern(o string) (*regexp.Regexp, error) {
	if !originRe.MatchString(o) {
		return nil, fmt.Errorf("%q is not an origin (scheme://host[:port], lower case, '*' for one label)", o)
	}
	if strings.Contains(o, "**") {
		return nil, fmt.Errorf("%q: '*' stands for one label; '**' is not allowed", o)
	}
	return regexp.Compile("^" + strings.ReplaceAll(regexp.QuoteMeta(o), `\*`, `[a-z0-9-]+`) + "$")
}

// corsRT is an API's CORS policy, compiled.
type corsRT struct {
	cfg      *CORSConfig
	any      bool
	exact    map[string]bool
	patterns []*regexp.Regexp
	methods  string
	headers  map[string]bool
	anyHdr   bool
	expose   string
	maxAge   string
}

func newCORS(c *CORSConfig) *corsRT {
	if c == nil {
		return nil
	}
	r := &corsRT{cfg: c, exact: map[string]bool{}, headers: map[string]bool{},
		methods: strings.Join(c.AllowMethods, ", "), expose: strings.Join(c.ExposeHeaders, ", ")}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*":
			r.any = true
		case strings.Contains(o, "*"):
			p, _ := originPattern(o) // validated
			r.patterns = append(r.patterns, p)
		default:
			r.exact[o] = true
		}
	}
	for _, h := range c.AllowHeaders {
		if h == "*" {
			r.anyHdr = true
		}
		r.headers[strings.ToLower(h)] = true
	}
	if c.MaxAge > 0 {
		r.maxAge = strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
	return r
}

// allowed reports whether origin may call the API.
func (c *corsRT) allowed(origin string) bool {
	if c.any {
		return true
	}
	if c.exact[origin] {
		return true
	}
	for _, p := range c.patterns {
		if p.MatchString(origin) {
			return true
		}
	}
	return false
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a preflight request: 204, with the CORS headers only
// when the origin, method and headers asked for are all allowed.
func (c *corsRT) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	ok := c.allowed(origin) && slices.Contains(c.cfg.AllowMethods, method)
	var asked []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				asked = append(asked, name)
				if !c.anyHdr && !c.headers[name] {
					ok = false
				}
			}
		}
	}
	if ok {
		c.originHeaders(h, origin)
		h.Set("Access-Control-Allow-Methods", c.methods)
		if len(asked) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
		}
		if c.maxAge != "" {
			h.Set("Access-Control-Max-Age", c.maxAge)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// actual adds the CORS headers of a non-preflight answer for an allowed
// origin.
func (c *corsRT) actual(h http.Header, origin string) {
	h.Add("Vary", "Origin")
	if origin == "" || !c.allowed(origin) {
		return
	}
	c.originHeaders(h, origin)
	if c.expose != "" {
		h.Set("Access-Control-Expose-Headers", c.expose)
	}
}

func (c *corsRT) originHeaders(h http.Header, origin string) {
	if c.any && !c.cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if c.cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// corsResponseHeaders are dropped from the upstream's answer when the API
// has a CORS policy: the gateway's own policy speaks for the API.
var corsResponseHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
}
