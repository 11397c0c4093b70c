package admin_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFlows drives the flow routes: create, save versions, read them
// back, roll back, refuse bad flows, and refuse deleting a flow a client
// uses.
func TestFlows(t *testing.T) {
	e := newEnv(t)
	const base = "/api/admin/v1/flows"
	step := func(opts ...string) map[string]any { return map[string]any{"options": opts} }

	r := e.call("POST", base, map[string]any{"name": "admins-mfa", "steps": []any{step("password")}, "comment": "first"})
	if r.status != http.StatusCreated || r.header.Get("Location") != base+"/admins-mfa" {
		t.Fatalf("create: %d %s (Location %q)", r.status, r.body, r.header.Get("Location"))
	}
	if v := r.json(t)["version"]; v != 1.0 {
		t.Fatalf("create: version %v, want 1", v)
	}
	if r := e.call("POST", base, map[string]any{"name": "admins-mfa", "steps": []any{step("password")}}); r.status != http.StatusConflict {
		t.Errorf("create twice: %d %s, want 409", r.status, r.body)
	}
	r = e.call("PUT", base+"/admins-mfa", map[string]any{"steps": []any{step("password"), map[string]any{"options": []string{"totp"}, "subject_step": true}}})
	if r.status != http.StatusOK || r.json(t)["version"] != 2.0 {
		t.Fatalf("save version 2: %d %s", r.status, r.body)
	}
	r = e.call("GET", base+"/admins-mfa", nil)
	got := r.json(t)
	steps, _ := got["steps"].([]any)
	if r.status != http.StatusOK || got["version"] != 2.0 || len(steps) != 2 || steps[1].(map[string]any)["subject_step"] != true {
		t.Fatalf("get latest: %d %s", r.status, r.body)
	}
	r = e.call("GET", base+"/admins-mfa/versions/1", nil)
	if r.status != http.StatusOK || r.json(t)["comment"] != "first" {
		t.Fatalf("get version 1: %d %s", r.status, r.body)
	}
	for path, want := range map[string]int{
		base + "/admins-mfa/versions/3":   http.StatusNotFound,
		base + "/admins-mfa/versions/0":   http.StatusBadRequest,
		base + "/admins-mfa/versions/abc": http.StatusBadRequest,
		base + "/nope":                    http.StatusNotFound,
		base + "/nope/versions":           http.StatusNotFound,
	} {
		if r := e.call("GET", path, nil); r.status != want {
			t.Errorf("GET %s: %d %s, want %d", path, r.status, r.body, want)
		}
	}

	r = e.call("POST", base+"/admins-mfa/rollback", map[string]any{"version": 1})
	got = r.json(t)
	if r.status != http.StatusOK || got["version"] != 3.0 || len(got["steps"].([]any)) != 1 || !strings.Contains(got["comment"].(string), "1") {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	if r := e.call("POST", base+"/admins-mfa/rollback", map[string]any{"version": 9}); r.status != http.StatusNotFound {
		t.Errorf("rollback to a missing version: %d %s", r.status, r.body)
	}
	r = e.call("GET", base+"/admins-mfa/versions", nil)
	if items := r.json(t)["items"].([]any); len(items) != 3 {
		t.Fatalf("versions: %d %s", r.status, r.body)
	}
	r = e.call("GET", base, nil)
	if items := r.json(t)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["version"] != 3.0 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	for name, tc := range map[string]struct {
		path  string
		body  any
		field string
	}{
		"no steps":          {base, map[string]any{"name": "x", "steps": []any{}}, "steps"},
		"empty step":        {base, map[string]any{"name": "x", "steps": []any{step()}}, "steps[0].options"},
		"bad name":          {base, map[string]any{"name": "Has Space", "steps": []any{step("password")}}, "name"},
		"name mismatch":     {base + "/a", map[string]any{"name": "b", "steps": []any{step("password")}}, "name"},
		"unknown field":     {base, map[string]any{"name": "x", "steps": []any{step("password")}, "stepz": 1}, ""},
		"unknown step key":  {base, map[string]any{"name": "x", "steps": []any{map[string]any{"option": []string{"a"}}}}, ""},
		"control character": {base, map[string]any{"name": "x", "steps": []any{step("pass\x00word")}}, "steps[0].options[0]"},
	} {
		method := "POST"
		if tc.path != base {
			method = "PUT"
		}
		r := e.call(method, tc.path, tc.body)
		if r.status != http.StatusBadRequest || (tc.field != "" && r.json(t)["field"] != tc.field) {
			t.Errorf("%s: %d %s, want 400 about %q", name, r.status, r.body, tc.field)
		}
	}
	// A script needs the script engine, which this server has not.
	if r := e.call("PUT", base+"/scripted", map[string]any{"steps": []any{step("password")}, "script": "var onLoginRequest = function (c) { executeStep(1); };"}); r.status < 400 || r.status >= 600 || r.status == 500 {
		t.Errorf("script without an engine: %d %s", r.status, r.body)
	}

	// A client refers to the flow by name; the flow cannot go while it does.
	r = e.call("POST", "/api/admin/v1/clients", map[string]any{"client_id": "mfa-app", "redirect_uris": []string{"https://app.example.com/cb"},
		"settings": map[string]any{"authentication": map[string]any{"flow": "admins-mfa"}}})
	if r.status != http.StatusCreated {
		t.Fatalf("client with a flow reference: %d %s", r.status, r.body)
	}
	clientID := r.json(t)["id"].(string)
	r = e.call("POST", "/api/admin/v1/clients", map[string]any{"client_id": "lost-app",
		"settings": map[string]any{"authentication": map[string]any{"flow": "no-such-flow"}}})
	if r.status != http.StatusBadRequest || r.json(t)["field"] != "settings.authentication.flow" {
		t.Errorf("client naming a missing flow: %d %s", r.status, r.body)
	}
	if r := e.call("PATCH", "/api/admin/v1/clients/"+clientID, map[string]any{
		"settings": map[string]any{"authentication": map[string]any{"flow": "no-such-flow"}}}); r.status != http.StatusBadRequest {
		t.Errorf("client updated to name a missing flow: %d %s", r.status, r.body)
	}
	if r := e.call("POST", "/api/admin/v1/clients", map[string]any{"client_id": "mixed-app",
		"settings": map[string]any{"authentication": map[string]any{"flow": "admins-mfa", "steps": []any{step("password")}}}}); r.status != http.StatusBadRequest {
		t.Errorf("client mixing a reference and steps: %d %s", r.status, r.body)
	}
	if r := e.call("DELETE", base+"/admins-mfa", nil); r.status != http.StatusConflict || !strings.Contains(string(r.body), "mfa-app") {
		t.Errorf("delete a used flow: %d %s", r.status, r.body)
	}
	if r := e.call("DELETE", "/api/admin/v1/clients/"+clientID, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete client: %d %s", r.status, r.body)
	}
	if r := e.call("DELETE", base+"/admins-mfa", nil); r.status != http.StatusNoContent {
		t.Errorf("delete flow: %d %s", r.status, r.body)
	}
	if r := e.call("GET", base+"/admins-mfa", nil); r.status != http.StatusNotFound {
		t.Errorf("get deleted flow: %d %s", r.status, r.body)
	}
	acts := strings.Join(e.audit.actions(), " ")
	for _, a := range []string{"flow.save:success", "flow.rollback:success", "flow.delete:success"} {
		if !strings.Contains(acts, a) {
			t.Errorf("audit log lacks %s: %s", a, acts)
		}
	}
}
