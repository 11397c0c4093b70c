package ldap_test

import (
	"testing"

	"github.com/latchid/latch/abi"
)

// BenchmarkDomainsLogin logs LDAP/alice in through the password step and
// the router (local SQL store first, the directory second), as a login
// page does.
func BenchmarkDomainsLogin(b *testing.B) {
	s := sharedSlapd(b)
	d := newDomains(b, s, config(s), `{}`)
	ctx := ctxT(b)
	req := abi.AuthenticateRequest{Tenant: domainTenant, Params: map[string][]string{"username": {"LDAP/alice"}, "password": {"alice-password"}}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := d.authn.Authenticate(ctx, req)
		if err != nil || resp.Outcome != abi.OutcomeAuthenticated {
			b.Fatalf("%+v %v", resp, err)
		}
	}
}

// BenchmarkDomainsListAll pages through every user of both stores (2,000+
// directory users), 500 at a time, as the admin API and SCIM do.
func BenchmarkDomainsListAll(b *testing.B) {
	s := sharedSlapd(b)
	d := newDomains(b, s, config(s), `{}`)
	ctx := ctxT(b)
	b.ReportAllocs()
	for b.Loop() {
		n, cursor := 0, ""
		for {
			resp, err := d.dir.FindUsers(ctx, domainTenant, abi.FindUsersRequest{Limit: 500, Cursor: cursor})
			if err != nil {
				b.Fatal(err)
			}
			n += len(resp.Users)
			if cursor = resp.Next; cursor == "" {
				break
			}
		}
		if n < bulkUsers {
			b.Fatalf("listed %d users", n)
		}
	}
}
