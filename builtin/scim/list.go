package scim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// listQuery is a query (RFC 7644 section 3.4.2) from URL parameters or a
// SearchRequest body.
type listQuery struct {
	filter      string
	sortBy      string
	descending  bool
	startIndex  int
	count       int
	attributes  string
	excluded    string
	hasSortBy   bool
	sortOrderIn string
}

func queryFromURL(c *fiber.Ctx) (listQuery, *Error) {
	q := listQuery{
		filter: c.Query("filter"), sortBy: c.Query("sortBy"), sortOrderIn: c.Query("sortOrder"),
		attributes: c.Query("attributes"), excluded: c.Query("excludedAttributes"),
	}
	var err *Error
	if q.startIndex, err = intParam("startIndex", c.Query("startIndex"), 1); err != nil {
		return q, err
	}
	if q.count, err = intParam("count", c.Query("count"), DefaultCount); err != nil {
		return q, err
	}
	return q.fix()
}

func intParam(name, v string, def int) (int, *Error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 10 {
		return 0, badRequest(ErrTypeInvalidValue, "%s: must be an integer", name)
	}
	return n, nil
}

// queryFromBody reads a SearchRequest (RFC 7644 section 3.4.3).
func queryFromBody(body map[string]any) (listQuery, *Error) {
	q := listQuery{startIndex: 1, count: DefaultCount}
	for k, v := range body {
		var err *Error
		switch strings.ToLower(k) {
		case "schemas":
			l, ok := v.([]any)
			if !ok || !slices.Contains(l, any(MsgSearchRequest)) {
				return q, badRequest(ErrTypeInvalidValue, "schemas: must be [%q]", MsgSearchRequest)
			}
		case "filter":
			q.filter, err = stringField(k, v)
		case "sortby":
			q.sortBy, err = stringField(k, v)
		case "sortorder":
			q.sortOrderIn, err = stringField(k, v)
		case "attributes":
			q.attributes, err = listField(k, v)
		case "excludedattributes":
			q.excluded, err = listField(k, v)
		case "startindex":
			q.startIndex, err = intField(k, v)
		case "count":
			q.count, err = intField(k, v)
		default:
			return q, badRequest(ErrTypeInvalidValue, "unknown SearchRequest attribute %q", clip(k))
		}
		if err != nil {
			return q, err
		}
	}
	if _, ok := body["schemas"]; !ok {
		return q, badRequest(ErrTypeInvalidValue, "schemas: must be [%q]", MsgSearchRequest)
	}
	return q.fix()
}

func stringField(k string, v any) (string, *Error) {
	s, ok := v.(string)
	if !ok {
		return "", badRequest(ErrTypeInvalidValue, "%s: must be a string", k)
	}
	return s, nil
}

func listField(k string, v any) (string, *Error) {
	l, ok := v.([]any)
	if !ok {
		return "", badRequest(ErrTypeInvalidValue, "%s: must be an array of strings", k)
	}
	parts := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok || strings.Contains(s, ",") {
			return "", badRequest(ErrTypeInvalidValue, "%s: must be an array of attribute names", k)
		}
		parts[i] = s
	}
	return strings.Join(parts, ","), nil
}

func intField(k string, v any) (int, *Error) {
	f, ok := number(v)
	if !ok || f != float64(int(f)) || f > 1<<31 || f < -(1<<31) {
		return 0, badRequest(ErrTypeInvalidValue, "%s: must be an integer", k)
	}
	return int(f), nil
}

// fix applies the defaults and bounds of RFC 7644 section 3.4.2.4: a
// startIndex below 1 is 1, a negative count is 0, count is capped.
func (q listQuery) fix() (listQuery, *Error) {
	if q.startIndex < 1 {
		q.startIndex = 1
	}
	if q.count < 0 {
		q.count = 0
	}
	if q.count > MaxResults {
		q.count = MaxResults
	}
	switch strings.ToLower(q.sortOrderIn) {
	case "", "ascending":
	case "descending":
		q.descending = true
	default:
		return q, badRequest(ErrTypeInvalidValue, "sortOrder: must be ascending or descending")
	}
	q.hasSortBy = q.sortBy != ""
	if len(q.sortBy) > 256 {
		return q, badRequest(ErrTypeInvalidValue, "sortBy: too long")
	}
	return q, nil
}

// parseFilterParam parses and checks a filter for rt.
func parseFilterParam(rt *resourceType, f string) (Expr, *Error) {
	if f == "" {
		return nil, nil
	}
	e, err := ParseFilter(f)
	if err != nil {
		return nil, badRequest(ErrTypeInvalidFilter, "%s", err.Error())
	}
	if err := (scope{rt: rt}).checkFilter(e); err != nil {
		return nil, err
	}
	return e, nil
}

// mentions reports whether e names the top-level attribute.
func mentions(e Expr, name string) bool {
	switch x := e.(type) {
	case *LogExpr:
		return mentions(x.Left, name) || mentions(x.Right, name)
	case *NotExpr:
		return mentions(x.X, name)
	case *ValuePathExpr:
		return strings.EqualFold(x.Path.Name, name)
	case *AttrExpr:
		return strings.EqualFold(x.Path.Name, name)
	}
	return false
}

// userNameEq finds a `userName eq "x"` that every match must satisfy (the
// filter itself or a conjunct of it), so the store's username index can
// narrow the scan. Only userName is narrowed: the store's email column
// holds the primary address alone, and emails.value also matches the
// others.
func userNameEq(e Expr) (string, bool) {
	switch x := e.(type) {
	case *AttrExpr:
		if x.Op == OpEq && strings.EqualFold(x.Path.Name, "userName") && x.Path.Sub == "" &&
			(x.Path.URI == "" || strings.EqualFold(x.Path.URI, SchemaUser)) {
			s, ok := x.Value.(string)
			return s, ok
		}
	case *LogExpr:
		if x.Op == "and" {
			if v, ok := userNameEq(x.Left); ok {
				return v, true
			}
			return userNameEq(x.Right)
		}
	}
	return "", false
}

// item is one resource in a listing. full, when set, renders the complete
// resource (with group memberships or members) once the page is chosen.
type item struct {
	rt   *resourceType
	r    map[string]any
	full func() (map[string]any, *Error)
	// lazy, when set, names the attribute full adds: a projection that
	// leaves it out skips full.
	lazy string
}

func (s *Service) collectUsers(rc *reqCtx, e Expr, sortBy string) ([]item, *Error) {
	needGroups := e != nil && mentions(e, "groups") || strings.HasPrefix(strings.ToLower(sortBy), "groups")
	q := store.UserQuery{Page: store.Page{Limit: store.MaxPageLimit}}
	if v, ok := userNameEq(e); ok {
		q.Username = v
	}
	var out []item
	scanned := 0
	sc := scope{rt: s.users}
	for {
		users, next, err := s.d.Store.ListUsers(rc.ctx, rc.tenant.ID, q)
		if err != nil {
			return nil, storeErr("user", err)
		}
		for _, u := range users {
			if router.IsShadow(u) { // listed as the directory's user
				continue
			}
			var gs []store.Group
			if needGroups {
				if gs, err = s.d.Store.ListUserGroups(rc.ctx, rc.tenant.ID, u.ID); err != nil {
					return nil, storeErr("group", err)
				}
			}
			r := s.userResource(u, gs, rc.base)
			if e != nil && !sc.match(e, r) {
				continue
			}
			it := item{rt: s.users, r: r}
			if !needGroups {
				u := u
				it.full = func() (map[string]any, *Error) {
					gs, err := s.d.Store.ListUserGroups(rc.ctx, rc.tenant.ID, u.ID)
					if err != nil {
						return nil, storeErr("group", err)
					}
					return s.userResource(u, gs, rc.base), nil
				}
			}
			out = append(out, it)
		}
		scanned += len(users)
		if scanned > maxScan {
			return nil, badRequest(ErrTypeTooMany, "the filter would examine more than %d users; narrow it with userName eq", maxScan)
		}
		if next == "" {
			return s.collectDirUsers(rc, e, needGroups, out)
		}
		q.After = next
	}
}

func (s *Service) collectGroups(rc *reqCtx, e Expr) ([]item, *Error) {
	p := store.Page{Limit: store.MaxPageLimit}
	var out []item
	sc := scope{rt: s.group}
	for {
		groups, next, err := s.d.Store.ListGroups(rc.ctx, rc.tenant.ID, p)
		if err != nil {
			return nil, storeErr("group", err)
		}
		for _, g := range groups {
			members, err := s.groupMembers(rc, g.ID)
			if err != nil {
				return nil, err
			}
			r := s.groupResource(g, members, rc.base)
			if e != nil && !sc.match(e, r) {
				continue
			}
			out = append(out, item{rt: s.group, r: r})
		}
		if len(out) > maxScan {
			return nil, badRequest(ErrTypeTooMany, "the filter matches more than %d groups", maxScan)
		}
		if next == "" {
			return s.collectDirGroups(rc, e, out)
		}
		p.After = next
	}
}

// respond sorts, pages and projects items into a ListResponse (RFC 7644
// section 3.4.2).
func (s *Service) respond(c *fiber.Ctx, q listQuery, items []item, rts ...*resourceType) error {
	if q.hasSortBy {
		ap, err := parseAttrPath(q.sortBy)
		if err != nil {
			return badRequest(ErrTypeInvalidValue, "sortBy: %s", err.Error())
		}
		targets := map[*resourceType]target{}
		for _, rt := range rts {
			t, serr := (scope{rt: rt}).resolve(ap)
			if serr != nil {
				return badRequest(ErrTypeInvalidValue, "sortBy: %s", serr.Detail)
			}
			if t.def.Type == TypeComplex {
				return badRequest(ErrTypeInvalidValue, "sortBy: name a sub-attribute of %q", clip(q.sortBy))
			}
			targets[rt] = t
		}
		slices.SortStableFunc(items, func(a, b item) int {
			ta, tb := targets[a.rt], targets[b.rt]
			c := lessValues(ta.def, ta.sortKey(a.r), tb.sortKey(b.r))
			if q.descending {
				// Absent values still sort last.
				if ta.sortKey(a.r) == nil || tb.sortKey(b.r) == nil {
					return c
				}
				return -c
			}
			return c
		})
	}
	total := len(items)
	start := min(q.startIndex-1, total)
	end := min(start+q.count, total)
	page := items[start:end]
	projs := map[*resourceType]*projection{}
	for _, rt := range rts {
		p, err := parseProjection(rt, q.attributes, q.excluded)
		if err != nil {
			return err
		}
		projs[rt] = p
	}
	resources := make([]any, len(page))
	for i, it := range page {
		r := it.r
		if it.full != nil && (it.lazy == "" || projs[it.rt].returns(it.lazy)) {
			var err *Error
			if r, err = it.full(); err != nil {
				return err
			}
		}
		resources[i] = projs[it.rt].apply(r)
	}
	return writeJSON(c, http.StatusOK, map[string]any{
		"schemas":      []string{MsgListResponse},
		"totalResults": total,
		"startIndex":   q.startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}

func (s *Service) listUsers(c *fiber.Ctx, rc *reqCtx) error {
	q, err := queryFromURL(c)
	if err != nil {
		return err
	}
	return s.runUserQuery(c, rc, q)
}

func (s *Service) runUserQuery(c *fiber.Ctx, rc *reqCtx, q listQuery) error {
	e, err := parseFilterParam(s.users, q.filter)
	if err != nil {
		return err
	}
	items, err := s.collectUsers(rc, e, q.sortBy)
	if err != nil {
		return err
	}
	return s.respond(c, q, items, s.users)
}

func (s *Service) searchUsers(c *fiber.Ctx, rc *reqCtx) error {
	q, err := s.searchBody(c)
	if err != nil {
		return err
	}
	return s.runUserQuery(c, rc, q)
}

func (s *Service) searchBody(c *fiber.Ctx) (listQuery, *Error) {
	body, err := decodeBody(c)
	if err != nil {
		return listQuery{}, err
	}
	return queryFromBody(body)
}

func (s *Service) listGroups(c *fiber.Ctx, rc *reqCtx) error {
	q, err := queryFromURL(c)
	if err != nil {
		return err
	}
	return s.runGroupQuery(c, rc, q)
}

func (s *Service) runGroupQuery(c *fiber.Ctx, rc *reqCtx, q listQuery) error {
	e, err := parseFilterParam(s.group, q.filter)
	if err != nil {
		return err
	}
	items, err := s.collectGroups(rc, e)
	if err != nil {
		return err
	}
	return s.respond(c, q, items, s.group)
}

func (s *Service) searchGroups(c *fiber.Ctx, rc *reqCtx) error {
	q, err := s.searchBody(c)
	if err != nil {
		return err
	}
	return s.runGroupQuery(c, rc, q)
}

// searchAll serves POST /.search at the root (RFC 7644 section 3.4.3): the
// filter runs against every resource type it is valid for.
func (s *Service) searchAll(c *fiber.Ctx, rc *reqCtx) error {
	q, err := s.searchBody(c)
	if err != nil {
		return err
	}
	var items []item
	var rts []*resourceType
	var firstErr *Error
	for _, rt := range []*resourceType{s.users, s.group} {
		e, ferr := parseFilterParam(rt, q.filter)
		if ferr != nil {
			if firstErr == nil {
				firstErr = ferr
			}
			continue
		}
		var got []item
		if rt == s.users {
			got, err = s.collectUsers(rc, e, q.sortBy)
		} else {
			got, err = s.collectGroups(rc, e)
		}
		if err != nil {
			return err
		}
		items = append(items, got...)
		rts = append(rts, rt)
	}
	if len(rts) == 0 {
		return firstErr
	}
	return s.respond(c, q, items, rts...)
}
