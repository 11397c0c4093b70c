package adaptive

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchid/latch/kernel/store"
	"github.com/latchid/latch/kernel/store/sqlite"
)

// TestStoreHost runs scripts against a real SQLite store through
// StoreHost.
func TestStoreHost(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tn, err := st.CreateTenant(ctx, store.Tenant{Name: "acme", Enabled: true})
	must(err)
	alice, err := st.CreateUser(ctx, store.User{TenantID: tn.ID, Username: "alice", Email: "alice@example.com", Enabled: true,
		GivenName: "Alice", Attributes: map[string]any{"http://wso2.org/claims/country": "NL"}})
	must(err)
	bob, err := st.CreateUser(ctx, store.User{TenantID: tn.ID, Username: "bob", Email: "bob@example.com", Enabled: true,
		Attributes: map[string]any{"http://wso2.org/claims/country": "NL"}})
	must(err)
	_, err = st.CreateUser(ctx, store.User{TenantID: tn.ID, Username: "carol", Email: "carol@example.com", Enabled: false,
		LockedUntil: time.Now().Add(time.Hour)})
	must(err)
	grp, err := st.CreateGroup(ctx, store.Group{TenantID: tn.ID, Name: "ops"})
	must(err)
	must(st.AddGroupMember(ctx, tn.ID, grp.ID, alice.ID))
	role, err := st.CreateRole(ctx, store.Role{TenantID: tn.ID, Name: "admin"})
	must(err)
	must(st.AssignRole(ctx, tn.ID, role.ID, store.SubjectUser, alice.ID))
	now := time.Now()
	_, err = st.CreateSession(ctx, store.Session{TenantID: tn.ID, UserID: alice.ID, AuthTime: now, IP: "10.0.0.5",
		UserAgent: "Firefox/118.0", LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
	must(err)

	host := &StoreHost{Store: st, MaxScan: 2}
	e := newEngine(t, func(o *Options) { o.Host = host })
	tests := []struct {
		name, body, want, wantErr string
		user                      string
	}{
		{name: "roles, groups and claims", user: alice.ID,
			body: "var u = context.currentKnownSubject; Log.info([hasRole(u, 'admin'), isMemberOfAnyOfGroups(u, ['ops']), u.localClaims['http://wso2.org/claims/givenname'], u.localClaims['http://wso2.org/claims/country'], u.localClaims['http://wso2.org/claims/identity/accountLocked']].join(' '));",
			want: "true true Alice NL false"},
		{name: "bob has no role", user: bob.ID, body: "Log.info(hasAnyOfTheRoles(context.currentKnownSubject, ['admin']) + ' ' + context.currentKnownSubject.groups.length);", want: "false 0"},
		{name: "find by email", user: bob.ID,
			body: "var u = getUniqueUserWithClaimValues({'http://wso2.org/claims/emailaddress': 'alice@example.com'}, context); Log.info(u.username + ' ' + u.roles.join());",
			want: "alice admin"},
		{name: "find by email and another claim", user: bob.ID,
			body: "Log.info(getUniqueUserWithClaimValues({'http://wso2.org/claims/emailaddress': 'alice@example.com', 'http://wso2.org/claims/country': 'SE'}, context));",
			want: "null"},
		{name: "scan past the bound fails closed", user: bob.ID,
			body: "getUsersWithClaimValues({'http://wso2.org/claims/country': 'NL'}, context);", wantErr: "more than 2 users"},
		{name: "locked and disabled claims", user: bob.ID,
			body: "var c = getUniqueUserWithClaimValues({'http://wso2.org/claims/username': 'carol'}, context); Log.info(c.localClaims['http://wso2.org/claims/identity/accountLocked'] + ' ' + c.localClaims['http://wso2.org/claims/identity/accountDisabled']);",
			want: "true true"},
		{name: "sessions", user: alice.ID,
			body: "var ss = getUserSessions(context.currentKnownSubject); Log.info(ss.length + ' ' + ss[0].ip + ' ' + ss[0].userAgent.browser + ' ' + isWithinSessionLimit(context, {MaxSessionCount: 1}));",
			want: "1 10.0.0.5 Firefox false"},
		{name: "no secret store", user: alice.ID, body: "getSecretByName('x');", wantErr: "no secret store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, e, "function onLoginRequest(context) { executeStep(1, {onSuccess: function (context) {\n"+tt.body+"\n}}); }")
			d, err := e.Evaluate(ctx, s, Input{TenantDomain: "acme", Steps: twoSteps(),
				History: []Entry{{Kind: EntryStep, Step: 1, Success: true, Subject: &Subject{ID: tt.user}}}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := logs(d); got != tt.want {
				t.Errorf("logs = %q, want %q", got, tt.want)
			}
		})
	}
}
