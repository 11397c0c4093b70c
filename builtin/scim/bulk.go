package scim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// bulkOp is one operation of a BulkRequest (RFC 7644 section 3.7).
type bulkOp struct {
	index   int
	method  string
	bulkID  string
	version string
	path    string
	data    map[string]any
	// refs are the bulkIds the operation's path and data refer to.
	refs []string
}

const bulkIDPrefix = "bulkId:"

// maxBulkIDLen bounds a bulkId.
const maxBulkIDLen = 128

func parseBulk(body map[string]any) ([]bulkOp, int, *Error) {
	schemas, _ := body["schemas"].([]any)
	if !slices.Contains(schemas, any(MsgBulkRequest)) {
		return nil, 0, badRequest(ErrTypeInvalidSyntax, "schemas: must be [%q]", MsgBulkRequest)
	}
	failOn := 0
	var raw []any
	for k, v := range body {
		switch strings.ToLower(k) {
		case "schemas":
		case "failonerrors":
			f, ok := number(v)
			if !ok || f < 0 || f != float64(int(f)) || f > MaxBulkOperations*10 {
				return nil, 0, badRequest(ErrTypeInvalidValue, "failOnErrors: must be a non-negative integer")
			}
			failOn = int(f)
		case "operations":
			l, ok := v.([]any)
			if !ok {
				return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations: must be an array")
			}
			raw = l
		default:
			return nil, 0, badRequest(ErrTypeInvalidSyntax, "unknown BulkRequest attribute %q", clip(k))
		}
	}
	if len(raw) == 0 {
		return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations: at least one operation is required")
	}
	if len(raw) > MaxBulkOperations {
		return nil, 0, newErr(http.StatusRequestEntityTooLarge, ErrTypeTooMany, "Operations: at most %d operations per request", MaxBulkOperations)
	}
	ops := make([]bulkOp, 0, len(raw))
	seen := map[string]bool{}
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: must be an object", i)
		}
		op := bulkOp{index: i}
		for k, v := range m {
			var s string
			if k != "data" {
				var ok bool
				if s, ok = v.(string); !ok {
					return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d].%s: must be a string", i, clip(k))
				}
			}
			switch strings.ToLower(k) {
			case "method":
				op.method = strings.ToUpper(s)
			case "bulkid":
				op.bulkID = s
			case "version":
				op.version = s
			case "path":
				op.path = s
			case "data":
				dm, ok := v.(map[string]any)
				if !ok {
					return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d].data: must be an object", i)
				}
				op.data = dm
			default:
				return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: unknown attribute %q", i, clip(k))
			}
		}
		switch op.method {
		case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch:
			if op.data == nil {
				return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d]: %s needs data", i, op.method)
			}
		case fiber.MethodDelete:
		default:
			return nil, 0, badRequest(ErrTypeInvalidSyntax, "Operations[%d].method: must be POST, PUT, PATCH or DELETE", i)
		}
		if op.method == fiber.MethodPost && op.bulkID == "" {
			return nil, 0, badRequest(ErrTypeInvalidValue, "Operations[%d]: POST needs a bulkId", i)
		}
		if len(op.bulkID) > maxBulkIDLen || len(op.path) > 256 {
			return nil, 0, badRequest(ErrTypeInvalidValue, "Operations[%d]: bulkId or path too long", i)
		}
		if op.bulkID != "" {
			if seen[op.bulkID] {
				return nil, 0, badRequest(ErrTypeUniqueness, "Operations[%d]: bulkId %q is used twice", i, clip(op.bulkID))
			}
			seen[op.bulkID] = true
		}
		op.refs = collectRefs(op.data, nil)
		if strings.Contains(op.path, bulkIDPrefix) {
			_, ref, _ := strings.Cut(op.path, bulkIDPrefix)
			op.refs = append(op.refs, ref)
		}
		ops = append(ops, op)
	}
	return ops, failOn, nil
}

// collectRefs finds the "bulkId:x" strings in a JSON value.
func collectRefs(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(x, bulkIDPrefix); ok && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	case map[string]any:
		for _, e := range x {
			out = collectRefs(e, out)
		}
	case []any:
		for _, e := range x {
			out = collectRefs(e, out)
		}
	}
	return out
}

// replaceRefs swaps each "bulkId:x" string for the id x created.
func replaceRefs(v any, ids map[string]string) any {
	switch x := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(x, bulkIDPrefix); ok {
			if id, ok := ids[ref]; ok {
				return id
			}
		}
	case map[string]any:
		for k, e := range x {
			x[k] = replaceRefs(e, ids)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceRefs(e, ids)
		}
	}
	return v
}

// bulkHTTP serves POST /Bulk. Operations run in the order their bulkId
// references allow (an operation waits for the POSTs it refers to); a
// reference to an unknown, failed or circular bulkId fails that operation
// with 409. After failOnErrors errors the rest are not run.
func (s *Service) bulkHTTP(c *fiber.Ctx, rc *reqCtx) error {
	body, err := decodeBody(c)
	if err != nil {
		return err
	}
	ops, failOn, err := parseBulk(body)
	if err != nil {
		return err
	}
	results := make([]map[string]any, len(ops))
	ids := map[string]string{}
	failed := map[string]bool{}
	known := map[string]bool{}
	for _, op := range ops {
		if op.bulkID != "" && op.method == fiber.MethodPost {
			known[op.bulkID] = true
		}
	}
	errorsSeen := 0
	pending := ops
	for len(pending) > 0 && (failOn == 0 || errorsSeen < failOn) {
		var next []bulkOp
		progress := false
		for _, op := range pending {
			if failOn > 0 && errorsSeen >= failOn {
				break
			}
			ready, bad := true, ""
			for _, ref := range op.refs {
				switch {
				case !known[ref]:
					bad = "refers to bulkId " + strconv.Quote(clip(ref)) + ", which no POST in this request defines"
				case failed[ref]:
					bad = "refers to bulkId " + strconv.Quote(clip(ref)) + ", whose operation failed"
				case ids[ref] == "":
					ready = false
				}
			}
			if bad != "" {
				results[op.index] = bulkFailure(op, newErr(http.StatusConflict, ErrTypeInvalidValue, "%s", bad))
				errorsSeen++
				failed[op.bulkID] = op.bulkID != ""
				progress = true
				continue
			}
			if !ready {
				next = append(next, op)
				continue
			}
			progress = true
			res := s.runBulkOp(rc, op, ids)
			results[op.index] = res
			if st, _ := res["status"].(string); !strings.HasPrefix(st, "2") {
				errorsSeen++
				if op.bulkID != "" {
					failed[op.bulkID] = true
				}
			}
		}
		if !progress {
			for _, op := range next {
				results[op.index] = bulkFailure(op, newErr(http.StatusConflict, ErrTypeInvalidValue, "bulkId references form a cycle"))
				errorsSeen++
			}
			break
		}
		pending = next
	}
	out := make([]any, 0, len(results))
	for _, r := range results {
		if r != nil {
			out = append(out, r)
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"schemas": []string{MsgBulkResponse}, "Operations": out})
}

func bulkFailure(op bulkOp, err *Error) map[string]any {
	r := map[string]any{"method": op.method, "status": strconv.Itoa(err.Status), "response": err.body()}
	if op.bulkID != "" {
		r["bulkId"] = op.bulkID
	}
	return r
}

// runBulkOp runs one operation through the same code as the endpoints.
func (s *Service) runBulkOp(rc *reqCtx, op bulkOp, ids map[string]string) map[string]any {
	path := op.path
	if ref, ok := strings.CutPrefix(path[strings.LastIndexByte(path, '/')+1:], bulkIDPrefix); ok {
		path = path[:strings.LastIndexByte(path, '/')+1] + ids[ref]
	}
	var data map[string]any
	if op.data != nil {
		data, _ = replaceRefs(deepCopy(op.data), ids).(map[string]any)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var kind, id string
	switch len(parts) {
	case 1:
		kind = parts[0]
	case 2:
		kind, id = parts[0], parts[1]
	}
	if kind != "Users" && kind != "Groups" || (op.method == fiber.MethodPost) != (id == "") {
		return bulkFailure(op, badRequest(ErrTypeInvalidPath, "path %q: must be /Users or /Groups for POST and /Users/{id} or /Groups/{id} otherwise", clip(op.path)))
	}
	users := kind == "Users"
	var (
		r      map[string]any
		err    *Error
		status = http.StatusOK
	)
	switch op.method {
	case fiber.MethodPost:
		status = http.StatusCreated
		if users {
			r, err = s.createUser(rc, data)
		} else {
			r, err = s.createGroup(rc, data)
		}
	case fiber.MethodPut:
		if users {
			r, err = s.replaceUser(rc, id, op.version, data)
		} else {
			r, err = s.replaceGroup(rc, id, op.version, data)
		}
	case fiber.MethodPatch:
		if users {
			r, err = s.patchUser(rc, id, op.version, data)
		} else {
			r, err = s.patchGroup(rc, id, op.version, data)
		}
	case fiber.MethodDelete:
		status = http.StatusNoContent
		if users {
			err = s.deleteUser(rc, id, op.version)
		} else {
			err = s.deleteGroup(rc, id, op.version)
		}
	}
	if err != nil {
		if err.Status >= 500 {
			s.d.Log.ErrorContext(rc.ctx, "scim bulk operation failed", "request_id", rc.requestID, "err", err)
		}
		return bulkFailure(op, err)
	}
	out := map[string]any{"method": op.method, "status": strconv.Itoa(status)}
	if op.bulkID != "" {
		out["bulkId"] = op.bulkID
	}
	if r != nil {
		meta, _ := r["meta"].(map[string]any)
		out["location"], _ = meta["location"].(string)
		out["version"], _ = meta["version"].(string)
		if op.method == fiber.MethodPost && op.bulkID != "" {
			ids[op.bulkID], _ = r["id"].(string)
		}
	} else {
		out["location"] = rc.base + "/" + kind + "/" + id
	}
	return out
}
