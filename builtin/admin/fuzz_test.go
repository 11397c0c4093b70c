package admin_test

import (
	"testing"
)

// FuzzCreateUser sends arbitrary bodies to POST /users. Whatever arrives,
// the answer is a 201 or a 4xx JSON error — never a 5xx.
func FuzzCreateUser(f *testing.F) {
	for _, seed := range []string{
		`{"username":"alice","password":"long enough pw"}`,
		`{"username":"","password":""}`,
		`{"username":"a","attributes":{"x":{"y":[1,2,{"z":null}]}}}`,
		`{"username":"\u0000"}`,
		`{"username":"bob","locked_until":"not a time"}`,
		`{"username":"bob","enabled":"yes"}`,
		`[]`, `null`, `"str"`, `{`, `{"username":"x"}{"username":"y"}`,
	} {
		f.Add(seed)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		et := *e
		et.t = t
		r := et.call("POST", "/api/admin/v1/users", body)
		if r.status >= 500 || (r.status != 201 && (r.status < 400 || len(r.body) == 0 || r.body[0] != '{')) {
			t.Fatalf("body %q: %d %s", body, r.status, r.body)
		}
	})
}
