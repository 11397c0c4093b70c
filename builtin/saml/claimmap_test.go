package saml_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/latchid/latch/builtin/claims/dialect"
	"github.com/latchid/latch/builtin/saml"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// TestClaimDialectAttributes runs the assertion's claims through a
// claims.dialect mapper: an administrator's mapping of the local claim
// "department" to the SAML attribute urn:oid:2.5.4.11 (and the built-in
// SAML names) become claims an SP's attribute mapping can name.
func TestClaimDialectAttributes(t *testing.T) {
	var set *extension.Instances
	e := newEnv(t, func(d *saml.Deps) {
		d.ClaimMappers = func(tenant string) []*extension.Instance { return set.Enabled(tenant, extension.KindClaims) }
	})
	ctx := context.Background()
	reg := extension.NewRegistry()
	reg.Register(dialect.Module())
	var err error
	set, err = reg.Load(ctx, []extension.InstanceConfig{{Module: dialect.ID}}, extension.LoadOptions{Deps: map[string]any{dialect.DepStore: e.st}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close(ctx) })
	if _, err := e.st.PutClaimMapping(ctx, store.ClaimMapping{TenantID: e.def.ID, Dialect: "saml", Claim: "urn:oid:2.5.4.11",
		LocalURI: "http://wso2.org/claims/department"}); err != nil {
		t.Fatal(err)
	}
	sp := e.newSP("https://sp.example", false)
	e.register(sp, map[string]any{"attributes": map[string]any{
		"ou":   "urn:oid:2.5.4.11",
		"mail": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"sn":   "family_name",
	}})
	cookie := e.session(time.Now(), "pwd")
	u, id := sp.redirectRequest(t, nil)
	status, _, body := e.do(http.MethodGet, u, nil, cookie)
	if status != http.StatusOK {
		t.Fatalf("SSO answered %d: %s", status, body)
	}
	doc, _ := acsResponse(t, sp, status, body)
	a := parse(t, sp, doc, id)
	if got := attr(a, "ou"); len(got) != 1 || got[0] != "R&D" {
		t.Errorf("ou %v", got)
	}
	if got := attr(a, "mail"); len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("mail %v", got)
	}
	if got := attr(a, "sn"); len(got) != 1 || got[0] != "Doe" {
		t.Errorf("sn (a claim passed through) %v", got)
	}
}
