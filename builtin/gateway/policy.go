package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
)

// Policies are CEL expressions, per API and per route, that must evaluate
// to true for a request to go on; false, or an error while evaluating (a
// missing claim, the cost limit), refuses the request with 403. They are
// compiled once when the routes are loaded, so a bad expression is refused
// with the reload, never at request time. The variables:
//
//	request.method, request.path, request.host, request.ip: strings
//	request.headers: map of lower-case header name to its first value
//	request.query: map of query parameter to its first value
//	request.api, request.route: the matched API and route names
//	claims: the validated token's claims ({} on an open route)
const (
	// MaxPolicyLen bounds an expression's source.
	MaxPolicyLen = 4096
	// PolicyCostLimit bounds the work of one evaluation (CEL's cost
	// units); an expression over the limit is refused at run time.
	PolicyCostLimit = 10_000
)

var policyEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
	)
})

// policy is a compiled expression.
type policy struct {
	src string
	prg cel.Program
	// headers and query say whether the expression may read
	// request.headers and request.query; the maps are built only then.
	headers, query bool
}

// compilePolicy compiles src; "" is no policy (nil).
func compilePolicy(src string) (*policy, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return compileExpr(src, cel.BoolType)
}

// compileKey compiles a throttle key expression: a CEL expression
// yielding a string.
func compileKey(src string) (*policy, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("cel: needs an expression (cel:<expression>)")
	}
	return compileExpr(src, cel.StringType)
}

func compileExpr(src string, want *cel.Type) (*policy, error) {
	if len(src) > MaxPolicyLen {
		return nil, fmt.Errorf("longer than %d characters", MaxPolicyLen)
	}
	env, err := policyEnv()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compiling the CEL expression: %w", iss.Err())
	}
	if !ast.OutputType().IsExactType(want) {
		return nil, fmt.Errorf("the CEL expression must be a %s, not %s", typeName(want), ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(PolicyCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("planning the CEL expression: %w", err)
	}
	return &policy{src: src, prg: prg, headers: strings.Contains(src, "headers"), query: strings.Contains(src, "query")}, nil
}

var errPolicyType = errors.New("the expression did not yield a boolean")

func typeName(t *cel.Type) string {
	if t.IsExactType(cel.BoolType) {
		return "boolean"
	}
	return "string"
}

// keyOf evaluates a key expression over vars; an error is the empty key.
func (p *policy) keyOf(vars map[string]any) string {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return ""
	}
	s, _ := out.Value().(string)
	return s
}

// allows evaluates the policy over vars.
func (p *policy) allows(vars map[string]any) (bool, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errPolicyType
	}
	return b, nil
}

// policyVars builds the variables of a request for policies; the header
// and query maps stay empty unless one of them reads them.
func policyVars(r *http.Request, a *apiRT, route *routeRT, p *principal, ip netip.Addr, policies []*policy) map[string]any {
	var wantHeaders, wantQuery bool
	for _, pol := range policies {
		wantHeaders = wantHeaders || pol.headers
		wantQuery = wantQuery || pol.query
	}
	headers := map[string]any{}
	if wantHeaders {
		for k, v := range r.Header {
			if len(v) > 0 && k != "Authorization" {
				headers[strings.ToLower(k)] = v[0]
			}
		}
	}
	query := map[string]any{}
	if wantQuery && r.URL.RawQuery != "" {
		for k, v := range r.URL.Query() {
			if len(v) > 0 {
				query[k] = v[0]
			}
		}
	}
	ipStr := ""
	if ip.IsValid() {
		ipStr = ip.String()
	}
	claims := map[string]any{}
	if p != nil && p.claims != nil {
		claims = p.claims
	}
	return map[string]any{
		"request": map[string]any{
			"method": r.Method, "path": r.URL.Path, "host": r.Host, "ip": ipStr,
			"headers": headers, "query": query, "api": a.cfg.Name, "route": route.name,
		},
		"claims": claims,
	}
}
