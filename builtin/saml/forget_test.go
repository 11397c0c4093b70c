package saml_test

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestForget: a service provider's parsed settings are cached, so a
// change to its client is not seen at once; Forget of its tenant makes
// the next request read the store (what a cluster node does when another
// node changed a client).
func TestForget(t *testing.T) {
	e := newEnv(t)
	sp := e.newSP("https://sp.example", false)
	e.register(sp, nil)
	cookie := e.session(time.Now(), "pwd")
	sso := func() int {
		u, _ := sp.redirectRequest(t, nil)
		status, _, _ := e.do(http.MethodGet, u, nil, cookie)
		return status
	}
	if st := sso(); st != http.StatusOK {
		t.Fatalf("SSO of the registered SP: status %d", st)
	}
	ctx := context.Background()
	cl, err := e.st.GetClientByClientID(ctx, e.def.ID, sp.EntityID)
	if err != nil {
		t.Fatal(err)
	}
	cl.Enabled = false
	if _, err := e.st.UpdateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if st := sso(); st != http.StatusOK {
		t.Fatalf("right after disabling: status %d, want the cached SP still served (200)", st)
	}
	e.idp.Forget("another-tenant")
	if st := sso(); st != http.StatusOK {
		t.Fatalf("after forgetting another tenant: status %d, want the cached SP still served (200)", st)
	}
	e.idp.Forget(e.def.ID)
	if st := sso(); st == http.StatusOK {
		t.Fatal("after Forget of its tenant the disabled SP is still served")
	}
}
