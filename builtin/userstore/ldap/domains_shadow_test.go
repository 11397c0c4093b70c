package ldap_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/userstore/router"
)

// dirID returns the directory id of an LDAP user through the admin API.
func dirID(t *testing.T, admin, username string) string {
	t.Helper()
	st, body := do(t, "GET", admin+"/users?username="+url.QueryEscape(username), "", asAdmin)
	items, _ := body["items"].([]any)
	if st != 200 || len(items) != 1 {
		t.Fatalf("%s: %d %v", username, st, body)
	}
	return items[0].(map[string]any)["id"].(string)
}

// TestDomainsAttachBeforeLogin: an admin gives directory users a role, a
// database group, a profile and a link before they ever signed in; each
// creates the user's shadow record on demand, the data shows in the admin
// API and SCIM, and the user's first login keeps it (its roles are the
// subject's roles).
func TestDomainsAttachBeforeLogin(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	d.dir.KeepShadows(d.st)
	srv := d.serve(t)
	admin := srv + "/t/" + domainTenant + "/api/admin/v1"
	scimBase := srv + "/t/" + domainTenant + "/scim2"
	ctx := ctxT(t)

	erin := dirID(t, admin, "LDAP/erin")
	if _, err := d.st.GetUser(ctx, d.tid, erin); err == nil {
		t.Fatal("erin has a shadow before anything was attached")
	}
	st, body := do(t, "POST", admin+"/roles", `{"name":"auditor"}`, asAdmin)
	if st != 201 {
		t.Fatalf("create role: %d %v", st, body)
	}
	role := body["id"].(string)
	// Reading erin's roles, links and profiles creates nothing.
	for _, path := range []string{"/roles", "/links", "/profiles"} {
		if st, body = do(t, "GET", admin+"/users/"+erin+path, "", asAdmin); st != 200 || len(body["items"].([]any)) != 0 {
			t.Fatalf("GET %s before any data: %d %v", path, st, body)
		}
	}
	if _, err := d.st.GetUser(ctx, d.tid, erin); err == nil {
		t.Fatal("a read created erin's shadow")
	}

	if st, body = do(t, "PUT", admin+"/roles/"+role+"/users/"+erin, "", asAdmin); st != 204 {
		t.Fatalf("assign the role to LDAP/erin: %d %v", st, body)
	}
	sh, err := d.st.GetUser(ctx, d.tid, erin)
	if err != nil || !router.IsShadow(sh) || sh.Username != "LDAP/erin" || sh.Email != "erin@example.org" || sh.PasswordHash != "" {
		t.Fatalf("erin's shadow after the role: %+v, %v", sh, err)
	}
	st, body = do(t, "GET", admin+"/users/"+erin+"/roles", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || !slices.Equal(got, []string{"auditor"}) {
		t.Fatalf("erin's roles: %d %v", st, body)
	}

	st, body = do(t, "GET", admin+"/groups?limit=100", "", asAdmin)
	if st != 200 {
		t.Fatalf("list groups: %d %v", st, body)
	}
	var operators string
	for _, it := range body["items"].([]any) {
		if g := it.(map[string]any); g["name"] == "operators" {
			operators = g["id"].(string)
		}
	}
	if st, body = do(t, "PUT", admin+"/groups/"+operators+"/members/"+erin, "", asAdmin); st != 204 {
		t.Fatalf("add LDAP/erin to operators: %d %v", st, body)
	}
	st, body = do(t, "GET", admin+"/users/"+erin+"/groups", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || !slices.Equal(got, []string{"LDAP/auditors", "LDAP/staff", "operators"}) {
		t.Fatalf("erin's groups: %d %v", st, body)
	}
	st, body = do(t, "GET", admin+"/groups/"+operators+"/members", "", asAdmin)
	if got := strs(body["items"], "username"); st != 200 || !slices.Contains(got, "LDAP/erin") {
		t.Fatalf("operators' members: %d %v", st, body)
	}

	if st, body = do(t, "PUT", admin+"/users/"+erin+"/profiles/work", `{"email":"erin@work.example"}`, asAdmin); st != 200 {
		t.Fatalf("erin's work profile: %d %v", st, body)
	}
	st, body = do(t, "GET", admin+"/users/"+erin+"/profiles", "", asAdmin)
	if got := strs(body["items"], "name"); st != 200 || !slices.Equal(got, []string{"work"}) {
		t.Fatalf("erin's profiles: %d %v", st, body)
	}
	// The profile reaches claims (the router's user), not the directory
	// user's attributes in the admin API.
	if _, u, err := d.dir.GetUser(ctx, domainTenant, erin); err != nil || u.Attributes[claims.ProfilesAttribute] == nil {
		t.Fatalf("erin through the router: %+v, %v", u, err)
	}
	st, body = do(t, "GET", admin+"/users/"+erin, "", asAdmin)
	if attrs, _ := body["attributes"].(map[string]any); st != 200 || attrs[claims.ProfilesAttribute] != nil {
		t.Fatalf("GET erin shows the profiles as attributes: %d %v", st, body)
	}

	if st, body = do(t, "POST", admin+"/users/"+erin+"/links", `{"idp":"corp-oidc","subject":"248289761001"}`, asAdmin); st != 201 {
		t.Fatalf("link erin: %d %v", st, body)
	}
	if l, err := d.st.FindLink(ctx, d.tid, "corp-oidc", "248289761001"); err != nil || l.UserID != erin {
		t.Fatalf("erin's link: %+v, %v", l, err)
	}

	// Unknown directory users get nothing.
	if st, body = do(t, "PUT", admin+"/roles/"+role+"/users/LDAP:no-such-id", "", asAdmin); st != 404 {
		t.Fatalf("a role for an unknown directory user: %d %v", st, body)
	}
	if _, err := d.st.GetUser(ctx, d.tid, "LDAP:no-such-id"); err == nil {
		t.Fatal("a shadow was created for an unknown directory user")
	}

	// The first login keeps the shadow and what it holds.
	resp := d.login(t, "LDAP/erin", "erin-password")
	if resp.Outcome != abi.OutcomeAuthenticated || resp.Subject != erin {
		t.Fatalf("erin's login: %+v", resp)
	}
	rs, err := d.st.ListEffectiveUserRoles(ctx, d.tid, resp.Subject)
	if err != nil || len(rs) != 1 || rs[0].Name != "auditor" {
		t.Fatalf("the subject's roles after login: %v, %v", rs, err)
	}
	gs, err := d.st.ListUserGroups(ctx, d.tid, resp.Subject)
	if err != nil || len(gs) != 1 || gs[0].Name != "operators" {
		t.Fatalf("the subject's database groups after login: %v, %v", gs, err)
	}

	// SCIM: a directory user who never signed in joins a database group
	// through a group PATCH, and both resources show it.
	alice := dirID(t, admin, "LDAP/alice")
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + alice + `"}]}]}`
	if st, body = do(t, "PATCH", scimBase+"/Groups/"+operators, patch, asSCIM); st != 200 && st != 204 {
		t.Fatalf("SCIM add LDAP/alice to operators: %d %v", st, body)
	}
	st, body = do(t, "GET", scimBase+"/Groups/"+operators, "", asSCIM)
	if got := strs(body["members"], "value"); st != 200 || !slices.Contains(got, alice) || !slices.Contains(got, erin) {
		t.Fatalf("operators in SCIM: %d %v", st, body)
	}
	st, body = do(t, "GET", scimBase+"/Users/"+alice, "", asSCIM)
	if got := strs(body["groups"], "display"); st != 200 || !slices.Equal(got, []string{"LDAP/admins", "LDAP/staff", "operators"}) {
		t.Fatalf("LDAP/alice's groups in SCIM: %d %v", st, body)
	}
	// Still one listing entry per user: the shadows are not listed.
	st, body = do(t, "GET", scimBase+"/Users?filter="+url.QueryEscape(`userName sw "LDAP/"`), "", asSCIM)
	if got := strs(body["Resources"], "userName"); st != 200 || len(got) != 5 {
		t.Fatalf("directory users in SCIM: %d %v", st, got)
	}
	bad := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"LDAP:no-such-id"}]}]}`
	if st, body = do(t, "PATCH", scimBase+"/Groups/"+operators, bad, asSCIM); st != 400 || body["scimType"] != "invalidValue" {
		t.Fatalf("SCIM add an unknown directory user: %d %v", st, body)
	}
}

// TestDomainsSCIMGroupMembers: a directory group lists its members in
// SCIM with the ids the Users endpoint gives them; attributes and
// excludedAttributes leave them out; filters on members.value work.
func TestDomainsSCIMGroupMembers(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	srv := d.serve(t)
	base := srv + "/t/" + domainTenant + "/scim2"
	admin := srv + "/t/" + domainTenant + "/api/admin/v1"
	ids := map[string]string{}
	for _, n := range []string{"alice", "bob", "erin"} {
		ids[dirID(t, admin, "LDAP/"+n)] = "LDAP/" + n
	}

	st, body := do(t, "GET", base+"/Groups?filter="+url.QueryEscape(`displayName eq "LDAP/staff"`), "", asSCIM)
	res, _ := body["Resources"].([]any)
	if st != 200 || len(res) != 1 {
		t.Fatalf("LDAP/staff: %d %v", st, body)
	}
	staff := res[0].(map[string]any)
	members, _ := staff["members"].([]any)
	if len(members) != 3 {
		t.Fatalf("LDAP/staff's members in a listing: %v", staff)
	}
	for _, m := range members {
		mm := m.(map[string]any)
		id, _ := mm["value"].(string)
		if ids[id] == "" || mm["display"] != ids[id] || mm["type"] != "User" || !strings.HasSuffix(mm["$ref"].(string), "/Users/"+id) {
			t.Errorf("member %v is not one of %v", mm, ids)
		}
		// Each member id reads as the user in SCIM.
		if st, u := do(t, "GET", base+"/Users/"+id, "", asSCIM); st != 200 || u["userName"] != ids[id] {
			t.Errorf("member %s: %d %v", id, st, u)
		}
	}
	gid := staff["id"].(string)
	st, body = do(t, "GET", base+"/Groups/"+gid, "", asSCIM)
	if got := strs(body["members"], "display"); st != 200 || !slices.Equal(sorted(got), []string{"LDAP/alice", "LDAP/bob", "LDAP/erin"}) {
		t.Fatalf("GET LDAP/staff: %d %v", st, body)
	}
	for _, q := range []string{"excludedAttributes=members", "attributes=displayName"} {
		st, body = do(t, "GET", base+"/Groups/"+gid+"?"+q, "", asSCIM)
		if _, has := body["members"]; st != 200 || has || body["displayName"] != "LDAP/staff" {
			t.Errorf("GET LDAP/staff?%s: %d %v", q, st, body)
		}
		st, body = do(t, "GET", base+"/Groups?"+q, "", asSCIM)
		for _, r := range body["Resources"].([]any) {
			if _, has := r.(map[string]any)["members"]; st != 200 || has {
				t.Errorf("GET /Groups?%s lists members: %v", q, r)
			}
		}
	}
	var alice string
	for id, n := range ids {
		if n == "LDAP/alice" {
			alice = id
		}
	}
	st, body = do(t, "GET", base+"/Groups?sortBy=displayName&filter="+url.QueryEscape(`members.value eq "`+alice+`"`), "", asSCIM)
	if got := strs(body["Resources"], "displayName"); st != 200 || !slices.Equal(got, []string{"LDAP/admins", "LDAP/staff"}) {
		t.Fatalf("groups of LDAP/alice by members.value: %d %v", st, got)
	}
	st, body = do(t, "GET", base+"/Groups?filter="+url.QueryEscape(`members[display eq "LDAP/erin"] and displayName sw "LDAP/a"`), "", asSCIM)
	if got := strs(body["Resources"], "displayName"); st != 200 || !slices.Equal(got, []string{"LDAP/auditors"}) {
		t.Fatalf("erin's LDAP/a… groups: %d %v", st, got)
	}
}

// TestDomainsTwoTenants: two tenants sign their users in through one
// directory instance; each keeps its own shadow of an entry (same id,
// per tenant), with its own roles, and deleting one leaves the other.
func TestDomainsTwoTenants(t *testing.T) {
	s := ownSlapd(t)
	d := newDomains(t, s, config(s), `{}`)
	d.dir.KeepShadows(d.st)
	ctx := ctxT(t)
	other, err := d.st.CreateTenant(ctx, store.Tenant{Name: "globex", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	login := func(tenant string) string {
		t.Helper()
		resp, err := d.authn.Authenticate(ctx, abi.AuthenticateRequest{
			Tenant: tenant, Params: map[string][]string{"username": {"LDAP/erin"}, "password": {"erin-password"}},
		})
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
			t.Fatalf("erin's login in %s: %+v, %v", tenant, resp, err)
		}
		return resp.Subject
	}
	a, b := login(domainTenant), login("globex")
	if a != b || !strings.HasPrefix(a, "LDAP:") {
		t.Fatalf("subjects %q and %q: the directory id is the same in both tenants", a, b)
	}
	for _, tid := range []string{d.tid, other.ID} {
		sh, err := d.st.GetUser(ctx, tid, a)
		if err != nil || !router.IsShadow(sh) || sh.TenantID != tid {
			t.Fatalf("shadow in tenant %s: %+v, %v", tid, sh, err)
		}
	}
	// Logging in again in either tenant refreshes its own shadow.
	login(domainTenant)
	login("globex")

	// A role in one tenant is not the other's.
	r, err := d.st.CreateRole(ctx, store.Role{TenantID: d.tid, Name: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.st.AssignRole(ctx, d.tid, r.ID, store.SubjectUser, a); err != nil {
		t.Fatal(err)
	}
	if rs, err := d.st.ListEffectiveUserRoles(ctx, other.ID, a); err != nil || len(rs) != 0 {
		t.Fatalf("globex's erin has acme's roles: %v, %v", rs, err)
	}
	// The shadow of a tenant goes with the tenant's data only.
	if err := d.st.DeleteUser(ctx, d.tid, a); err != nil {
		t.Fatal(err)
	}
	if _, err := d.st.GetUser(ctx, other.ID, a); err != nil {
		t.Fatalf("deleting acme's shadow removed globex's: %v", err)
	}
	login(domainTenant)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
