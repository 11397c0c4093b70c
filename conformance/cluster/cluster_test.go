package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchid/latch/conformance/internal/live"
)

const (
	alicePass   = "alice-cluster-password-42"
	webSecret   = "web-cluster-secret-0123456789abcdefghij"
	svcSecret   = "svc-cluster-secret-0123456789abcdefghij"
	webRedirect = "http://127.0.0.1:9/web/callback"
	// propagation is how soon a configuration change made on one node
	// must be in force on every other node (issue: cluster mode).
	propagation = time.Second
)

// fixtures creates alice, the web client (authorization code + refresh)
// and the svc client (client_credentials) through base, and returns the
// svc client's record id.
func fixtures(t testing.TB, base string) string {
	t.Helper()
	if err := admin(base, http.MethodPost, "/users", map[string]any{
		"username": "alice", "password": alicePass, "email": "alice@example.com", "email_verified": true, "enabled": true,
	}, nil); err != nil {
		t.Fatalf("creating alice: %v", err)
	}
	if err := admin(base, http.MethodPost, "/clients", map[string]any{
		"client_id": "web", "client_secret": webSecret, "name": "Web App", "first_party": true,
		"redirect_uris": []string{webRedirect}, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "profile", "email", "offline_access"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, nil); err != nil {
		t.Fatalf("creating client web: %v", err)
	}
	var svc struct {
		ID string `json:"id"`
	}
	if err := admin(base, http.MethodPost, "/clients", map[string]any{
		"client_id": "svc", "client_secret": svcSecret, "name": "Service", "grant_types": []string{"client_credentials"},
		"scopes": []string{"orders:read"}, "token_endpoint_auth_method": "client_secret_basic", "enabled": true,
	}, &svc); err != nil {
		t.Fatalf("creating client svc: %v", err)
	}
	return svc.ID
}

// authURL is an authorization request of the web client at base with
// PKCE (RFC 7636) for verifier.
func authURL(base, verifier string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {"web"},
		"redirect_uri":          {webRedirect},
		"scope":                 {"openid profile email offline_access"},
		"state":                 {"state-cluster-0123456789"},
		"nonce":                 {"nonce-cluster-0123456789"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
	return base + "/oauth2/authorize?" + q.Encode()
}

// pageError turns a page the flow did not expect into an error; a 502 or
// 503 from the proxy becomes an *apiError that transient recognises.
func pageError(step string, p page) error {
	body := p.body
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Errorf("%s: %w", step, &apiError{status: p.status, body: p.location + " " + body})
}

// signIn submits alice's credentials on the login page p.
func signIn(b *browser, p page) (page, error) {
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		return page{}, pageError("want the login page", p)
	}
	return b.submit(p, map[string]string{"username": "alice", "password": alicePass}, webRedirect)
}

// codeFrom returns the code of a redirect to the web client.
func codeFrom(p page) (string, error) {
	if !strings.HasPrefix(p.location, webRedirect) {
		return "", pageError("want a redirect to the client", p)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		return "", err
	}
	if e := u.Query().Get("error"); e != "" {
		return "", fmt.Errorf("authorization error %s: %s", e, u.Query().Get("error_description"))
	}
	return u.Query().Get("code"), nil
}

// codeFlow runs an authorization request at base in b, signing alice in
// when asked, and returns the code and the PKCE verifier.
func codeFlow(b *browser, base string) (code, verifier string, err error) {
	verifier = oauth2.GenerateVerifier()
	p, err := b.get(authURL(base, verifier), webRedirect)
	if err != nil {
		return "", "", err
	}
	if p.location == "" {
		if p, err = signIn(b, p); err != nil {
			return "", "", err
		}
	}
	code, err = codeFrom(p)
	return code, verifier, err
}

func exchange(base, code, verifier string) (tokenResponse, error) {
	return token(base, "web", webSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier},
	})
}

func refresh(base, rt string) (tokenResponse, error) {
	return token(base, "web", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func clientCredentials(base string) (tokenResponse, error) {
	return token(base, "svc", svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}})
}

// transient reports whether err is what a client sees when the node
// serving its request dies: a broken connection, or the proxy's 502/503.
// Such a request was never acknowledged and may be retried.
func transient(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status == http.StatusBadGateway || ae.status == http.StatusServiceUnavailable
	}
	return err != nil
}

// load is the traffic the workers drive through the proxy, and what it
// had acknowledged.
type load struct {
	base string

	mu          sync.Mutex
	users       []string // ids of users whose creation was acknowledged
	clients     []string // ids of clients whose creation was acknowledged
	failures    []string // errors that are not the kill's fault
	ok          atomic.Int64
	interrupted atomic.Int64
	seq         atomic.Int64
}

func (l *load) fail(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, op+": "+err.Error())
	}
}

// outcome records one operation's result.
func (l *load) outcome(op string, err error) {
	switch {
	case err == nil:
		l.ok.Add(1)
	case transient(err):
		l.interrupted.Add(1)
	default:
		l.fail(op, err)
	}
}

// worker runs the mix of operations until ctx is done: a client
// credentials grant, an admin create (user, then client), and an
// authorization code login with its exchange and one refresh.
func (l *load) worker(ctx context.Context, id int) {
	b := newBrowser()
	for round := 0; ctx.Err() == nil; round++ {
		_, err := clientCredentials(l.base)
		l.outcome("client_credentials", err)

		n := l.seq.Add(1)
		if round%2 == 0 {
			var u struct {
				ID string `json:"id"`
			}
			err = admin(l.base, http.MethodPost, "/users", map[string]any{
				"username": fmt.Sprintf("load-%d-%d", id, n), "password": "load-user-password-0123", "enabled": true,
			}, &u)
			if err == nil {
				l.mu.Lock()
				l.users = append(l.users, u.ID)
				l.mu.Unlock()
			}
			l.outcome("create user", err)
		} else {
			var c struct {
				ID string `json:"id"`
			}
			err = admin(l.base, http.MethodPost, "/clients", map[string]any{
				"client_id": fmt.Sprintf("load-%d-%d", id, n), "grant_types": []string{"client_credentials"}, "scopes": []string{"orders:read"},
			}, &c)
			if err == nil {
				l.mu.Lock()
				l.clients = append(l.clients, c.ID)
				l.mu.Unlock()
			}
			l.outcome("create client", err)
		}

		code, verifier, err := codeFlow(b, l.base)
		if err != nil {
			if transient(err) {
				b = newBrowser() // start over, as a user reloading the page would
			}
			l.outcome("login", err)
			continue
		}
		tok, err := exchange(l.base, code, verifier)
		l.outcome("code exchange", err)
		if err != nil || tok.RefreshToken == "" {
			if err == nil {
				l.fail("code exchange", errors.New("no refresh token"))
			}
			continue
		}
		_, err = refresh(l.base, tok.RefreshToken)
		l.outcome("refresh", err)
	}
}

// waitFor waits until cond holds, failing the test after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterSurvivesKill is the cluster acceptance test: three nodes on
// one PostgreSQL database behind a round-robin proxy, one killed with
// SIGKILL under load.
func TestClusterSurvivesKill(t *testing.T) {
	var (
		c  *cluster
		gw *gatewaySetup // nil without Redis
	)
	if addr := redisAddr(); addr != "" {
		dsn := freshDatabase(t, postgresDSN(t))
		gw = newGatewaySetup(t, 3, addr)
		c = startNodesWith(t, 3, gw.perNode, append([]string{"LATCH_STORE_DRIVER=postgres", "LATCH_STORE_DSN=" + dsn}, gw.env...)...)
	} else {
		c = startCluster(t, 3)
	}
	pub := c.proxy.URL
	svcID := fixtures(t, pub)
	victim, survivors := c.nodes[2], c.nodes[:2]

	t.Run("TokensVerifyOnEveryNode", func(t *testing.T) {
		for i, issuer := range c.nodes {
			tok, err := clientCredentials(issuer.URL)
			if err != nil {
				t.Fatalf("client_credentials at node %d: %v", i, err)
			}
			for j, checker := range c.nodes {
				active, err := introspect(checker.URL, "svc", svcSecret, tok.AccessToken)
				if err != nil || !active {
					t.Errorf("token of node %d introspected at node %d: active=%v err=%v", i, j, active, err)
				}
			}
		}
	})

	// Flows begun on the victim before it dies, finished elsewhere after.
	signedIn := newBrowser() // signed in on the victim; its code is not exchanged yet
	pendingCode, pendingVerifier, err := codeFlow(signedIn, victim.URL)
	if err != nil {
		t.Fatalf("login on the victim: %v", err)
	}
	atLogin := newBrowser() // stopped at the login page the victim served
	loginVerifier := oauth2.GenerateVerifier()
	loginPage, err := atLogin.get(authURL(victim.URL, loginVerifier), webRedirect)
	if err != nil || loginPage.status != http.StatusOK {
		t.Fatalf("login page from the victim: %v %v", loginPage, err)
	}
	code, verifier, err := codeFlow(newBrowser(), victim.URL)
	if err != nil {
		t.Fatalf("second login on the victim: %v", err)
	}
	victimTokens, err := exchange(victim.URL, code, verifier)
	if err != nil || victimTokens.RefreshToken == "" {
		t.Fatalf("exchange on the victim: %+v %v", victimTokens, err)
	}

	// Load, the kill in the middle of it: the identity server's
	// operations through the proxy and, with Redis, throttled API calls
	// round robin over the nodes' gateways.
	l := &load{base: pub}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() { l.worker(ctx, i) })
	}
	var gl *gatewayLoad
	if gw != nil {
		gl = newGatewayLoad(gw.addrs)
		for i := range 3 {
			wg.Go(func() { gl.worker(ctx, i) })
		}
	}
	const phase = 40 // successful operations before and after the kill
	waitFor(t, "load before the kill", 2*time.Minute, func() bool { return l.ok.Load() >= phase })
	victim.Kill()
	afterKill := l.ok.Load()
	waitFor(t, "load after the kill", 2*time.Minute, func() bool { return l.ok.Load() >= afterKill+phase })
	stop()
	wg.Wait()
	t.Logf("load: %d operations acknowledged, %d interrupted by the kill (proxy saw %d backend failures); %d users and %d clients created",
		l.ok.Load(), l.interrupted.Load(), c.proxy.failures.Load(), len(l.users), len(l.clients))
	for _, f := range l.failures {
		t.Errorf("load failure not caused by the kill: %s", f)
	}

	t.Run("ThrottleHoldsClusterWide", func(t *testing.T) {
		if gl == nil {
			t.Skip("LATCH_TEST_REDIS_ADDR is not set: the throttled gateway traffic needs Redis (e.g. 127.0.0.1:6379)")
		}
		gl.check(t, len(c.nodes))
	})

	t.Run("NoAcknowledgedWriteLost", func(t *testing.T) {
		if len(l.users) == 0 || len(l.clients) == 0 {
			t.Fatal("the load acknowledged no user or client creation")
		}
		for i, s := range survivors {
			for _, id := range l.users {
				if err := admin(s.URL, http.MethodGet, "/users/"+id, nil, nil); err != nil {
					t.Errorf("node %d: acknowledged user %s: %v", i, id, err)
				}
			}
			for _, id := range l.clients {
				if err := admin(s.URL, http.MethodGet, "/clients/"+id, nil, nil); err != nil {
					t.Errorf("node %d: acknowledged client %s: %v", i, id, err)
				}
			}
		}
	})

	t.Run("FlowsFromDeadNodeFinishElsewhere", func(t *testing.T) {
		// An authorization code the dead node issued.
		if _, err := exchange(pub, pendingCode, pendingVerifier); err != nil {
			t.Errorf("exchanging the dead node's code: %v", err)
		}
		// A login page the dead node served, submitted to the others.
		loginPage.url = strings.Replace(loginPage.url, victim.URL, pub, 1)
		p, err := signIn(atLogin, loginPage)
		if err != nil {
			t.Fatalf("submitting the dead node's login page: %v", err)
		}
		code, err := codeFrom(p)
		if err != nil {
			t.Fatalf("finishing the dead node's login: %v", err)
		}
		if _, err := exchange(pub, code, loginVerifier); err != nil {
			t.Errorf("exchanging the code of the resumed login: %v", err)
		}
		// A refresh token the dead node issued.
		fresh, err := refresh(pub, victimTokens.RefreshToken)
		if err != nil || fresh.RefreshToken == "" {
			t.Errorf("refreshing the dead node's refresh token: %+v %v", fresh, err)
		}
		// The SSO session the dead node started: no login page again.
		p, err = signedIn.get(authURL(pub, oauth2.GenerateVerifier()), webRedirect)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := codeFrom(p); err != nil {
			t.Errorf("SSO session of the dead node not honoured: %v", err)
		}
	})

	t.Run("RestartedNodeRejoins", func(t *testing.T) {
		// As Kubernetes would restart the pod: same address, same
		// configuration, nothing kept locally.
		back := live.StartWith(t, live.Options{Env: c.nodeEnv(2), Listen: strings.TrimPrefix(victim.URL, "http://")})
		c.proxy.markUp(2)
		tok, err := clientCredentials(back.URL)
		if err != nil {
			t.Fatalf("client_credentials at the restarted node: %v", err)
		}
		for i, s := range survivors {
			if active, err := introspect(s.URL, "svc", svcSecret, tok.AccessToken); err != nil || !active {
				t.Errorf("the restarted node's token at node %d: active=%v err=%v", i, active, err)
			}
		}
		code, verifier, err := codeFlow(newBrowser(), back.URL)
		if err != nil {
			t.Fatalf("login at the restarted node: %v", err)
		}
		if _, err := exchange(pub, code, verifier); err != nil {
			t.Errorf("exchanging the restarted node's code elsewhere: %v", err)
		}
		for _, id := range l.users {
			if err := admin(back.URL, http.MethodGet, "/users/"+id, nil, nil); err != nil {
				t.Errorf("restarted node: acknowledged user %s: %v", id, err)
			}
		}
	})

	t.Run("ConfigChangeReachesEveryNode", func(t *testing.T) {
		for i, changer := range survivors {
			other := survivors[1-i]
			for _, enabled := range []bool{false, true} {
				if err := admin(changer.URL, http.MethodPatch, "/clients/"+svcID, map[string]any{"enabled": enabled}, nil); err != nil {
					t.Fatalf("node %d: setting svc enabled=%v: %v", i, enabled, err)
				}
				changed := time.Now()
				for {
					_, err := clientCredentials(other.URL)
					var ae *apiError
					if enabled && err == nil || !enabled && errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
						t.Logf("svc enabled=%v set on node %d in force on node %d after %s", enabled, i, 1-i, time.Since(changed))
						break
					}
					if !enabled && err == nil || errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
						if time.Since(changed) > propagation {
							t.Fatalf("svc enabled=%v set on node %d not in force on node %d after %s (last: %v)", enabled, i, 1-i, propagation, err)
						}
						time.Sleep(10 * time.Millisecond)
						continue
					}
					t.Fatalf("client_credentials at node %d: %v", 1-i, err)
				}
			}
		}
	})

	t.Run("DenyPolicyReachesEveryGateway", func(t *testing.T) {
		if gw == nil {
			t.Skip("LATCH_TEST_REDIS_ADDR is not set: the nodes run no gateway")
		}
		status := func(i int) int {
			resp, err := httpClient.Get("http://" + gw.addrs[i] + gatewayPath)
			if err != nil {
				t.Fatalf("gateway of node %d: %v", i, err)
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		var policy struct {
			ID string `json:"id"`
		}
		if err := admin(survivors[0].URL, http.MethodPost, "/gateway/deny", map[string]any{"kind": "api", "value": "limited", "reason": "cluster test"}, &policy); err != nil {
			t.Fatalf("adding a deny policy on node 0: %v", err)
		}
		added := time.Now()
		waitFor(t, "the deny policy added on node 0 in force on node 1's gateway", propagation, func() bool { return status(1) == http.StatusForbidden })
		t.Logf("a deny policy added on node 0 was in force on node 1's gateway after %s", time.Since(added))
		if err := admin(survivors[1].URL, http.MethodDelete, "/gateway/deny/"+policy.ID, nil, nil); err != nil {
			t.Fatalf("removing the deny policy on node 1: %v", err)
		}
		removed := time.Now()
		waitFor(t, "the deny policy removed on node 1 lifted on node 0's gateway", propagation, func() bool { return status(0) != http.StatusForbidden })
		t.Logf("the deny policy removed on node 1 was lifted on node 0's gateway after %s", time.Since(removed))
	})
}

// jwksKIDs returns the key ids node base publishes.
func jwksKIDs(base string) (map[string]bool, error) {
	resp, err := httpClient.Get(base + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kids[k.KID] = true
	}
	return kids, nil
}

// kidOf returns the "kid" of a compact JWS's protected header.
func kidOf(t *testing.T, jws string) string {
	t.Helper()
	head, _, ok := strings.Cut(jws, ".")
	if !ok {
		t.Fatalf("not a compact JWS: %q", jws)
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

// TestClusterKeyRotation rotates the signing key on one node and checks
// what every node publishes and signs with: the new key is in every
// node's JWK Set at once (they read the store), the rotating node signs
// with it at once, the other nodes sign with it within a second (the
// rotation's change notification drops their cache of the active key;
// until it arrives they sign with the previous key, still published as
// retiring), and every token verifies on every node throughout.
func TestClusterKeyRotation(t *testing.T) {
	c := startCluster(t, 3)
	fixtures(t, c.proxy.URL)
	var rotated struct {
		KID string `json:"kid"`
	}
	// Warm every node's cache of the active key.
	before := map[int]string{}
	for i, n := range c.nodes {
		tok, err := clientCredentials(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = kidOf(t, tok.AccessToken)
	}
	rotatedAt := time.Now()
	if err := admin(c.nodes[0].URL, http.MethodPost, "/keys/rotate", map[string]any{}, &rotated); err != nil || rotated.KID == "" {
		t.Fatalf("rotating on node 0: %q %v", rotated.KID, err)
	}
	// Every other node signs with the new key within a second of the
	// rotation's acknowledgement.
	acked := time.Now()
	for i := 1; i < len(c.nodes); i++ {
		for {
			tok, err := clientCredentials(c.nodes[i].URL)
			if err != nil {
				t.Fatal(err)
			}
			if kidOf(t, tok.AccessToken) == rotated.KID {
				t.Logf("node %d signs with the new key %s after node 0 acknowledged the rotation (%s after the request)", i, time.Since(acked).Round(time.Millisecond), time.Since(rotatedAt).Round(time.Millisecond))
				break
			}
			if time.Since(acked) > propagation {
				t.Fatalf("node %d still signs with the previous key %s after the rotation on node 0", i, propagation)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, n := range c.nodes {
		kids, err := jwksKIDs(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		if !kids[rotated.KID] || !kids[before[i]] {
			t.Errorf("node %d publishes %v; want the new key %s and the retiring %s", i, kids, rotated.KID, before[i])
		}
		tok, err := clientCredentials(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		kid := kidOf(t, tok.AccessToken)
		if i == 0 && kid != rotated.KID {
			t.Errorf("the rotating node signs with %s, want the new key %s", kid, rotated.KID)
		}
		if !kids[kid] {
			t.Errorf("node %d signs with %s, which it does not publish", i, kid)
		}
		t.Logf("node %d signs with the %s key right after the rotation on node 0", i, map[bool]string{true: "new", false: "previous"}[kid == rotated.KID])
		for j, checker := range c.nodes {
			if active, err := introspect(checker.URL, "svc", svcSecret, tok.AccessToken); err != nil || !active {
				t.Errorf("token of node %d (kid %s) introspected at node %d: active=%v err=%v", i, kid, j, active, err)
			}
		}
	}
}
