package adaptive

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// runBody runs body in the onSuccess callback of step 1, after alice (u1)
// passed it, and returns the decision.
func runBody(t *testing.T, e *Engine, body string, req Request) (Decision, error) {
	t.Helper()
	s, err := e.Compile("fn.js", "function onLoginRequest(context) { executeStep(1, {onSuccess: function (context) {\n"+body+"\n}}); }")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	sub := &Subject{ID: "u1", Username: "alice", UserStoreDomain: "PRIMARY",
		Claims: map[string]string{"email": "alice@example.com"}}
	return e.Evaluate(context.Background(), s, Input{
		Steps: twoSteps(), TenantDomain: "acme", Request: req, RequestedACRs: []string{"mfa"},
		Time:    time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		History: []Entry{{Kind: EntryStep, Step: 1, Success: true, Subject: sub, Authenticator: "password"}},
	})
}

func jwtOf(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + ".sig"
}

func TestFunctions(t *testing.T) {
	e := newEngine(t, nil)
	req := Request{
		IP:      "203.0.113.9",
		Headers: map[string]string{"user-agent": "Firefox/118.0", "x-forwarded-for": "203.0.113.9"},
		Params:  map[string][]string{"login_hint": {"alice"}},
		Cookies: map[string]string{"plain": "v1", "tampered": "u1.AAAA"},
	}
	signed := e.signCookie("dev", "u1")
	encrypted, err := e.encryptCookie("enc", "hidden")
	if err != nil {
		t.Fatal(err)
	}
	req.Cookies["dev"] = signed
	req.Cookies["enc"] = encrypted
	req.Cookies["moved"] = signed // signed for "dev", presented as "moved"
	tok := jwtOf(`{"alg":"RS256","kid":"k1"}`, `{"sub":"alice","amr":["pwd"],"level":2}`)

	tests := []struct {
		name    string
		body    string
		want    string // the log lines, joined by |
		effects string // JSON of the effects
		wantErr string // substring of the ScriptError detail
	}{
		{name: "user fields", body: "var u = context.steps[1].subject; Log.info([u.uniqueId, u.username, u.tenantDomain, u.userStoreDomain, u.roles.join('+'), u.isFederated].join(','));",
			want: "u1,alice,acme,PRIMARY,admin+staff,false"},
		{name: "claims and localClaims", body: "var u = context.currentKnownSubject; Log.info(u.claims.email + ' ' + u.localClaims['http://wso2.org/claims/country'] + ' ' + u.localClaims['nope'] + ' ' + JSON.stringify(u.remoteClaims));",
			want: "alice@example.com NL undefined {}"},
		{name: "localClaims write is an effect and visible", body: "var u = context.currentKnownSubject; u.localClaims['http://wso2.org/claims/lastRisk'] = 'high'; Log.info(u.localClaims['http://wso2.org/claims/lastRisk'] + ' ' + getUserClaimValue(u, 'http://wso2.org/claims/lastRisk'));",
			want: "high high", effects: `[{"kind":"set_local_claim","user_id":"u1","claim":"http://wso2.org/claims/lastRisk","value":"high"}]`},
		{name: "hasRole", body: "var u = context.currentKnownSubject; Log.info(hasRole(u, 'admin') + ' ' + hasRole(u, 'root'));", want: "true false"},
		{name: "hasAnyOfTheRoles", body: "var u = context.currentKnownSubject; Log.info(hasAnyOfTheRoles(u, ['root', 'staff']) + ' ' + hasAnyOfTheRoles(u, ['root']));", want: "true false"},
		{name: "hasAnyOfTheRolesV2 takes the context", body: "Log.info(hasAnyOfTheRolesV2(context, ['admin']) + ' ' + hasAnyOfTheRolesV2(context, ['x']));", want: "true false"},
		{name: "isMemberOfAnyOfGroups", body: "var u = context.currentKnownSubject; Log.info(isMemberOfAnyOfGroups(u, ['ops']) + ' ' + isMemberOfAnyOfGroups(u, ['hr']));", want: "true false"},
		{name: "assignUserRoles", body: "var u = context.currentKnownSubject; assignUserRoles(u, ['auditor']); Log.info(hasRole(u, 'auditor'));",
			want: "true", effects: `[{"kind":"assign_roles","user_id":"u1","roles":["auditor"]}]`},
		{name: "removeUserRolesV2", body: "removeUserRolesV2(context, ['admin']); Log.info(hasRole(context.currentKnownSubject, 'admin'));",
			want: "false", effects: `[{"kind":"remove_roles","user_id":"u1","roles":["admin"]}]`},
		{name: "assignUserRolesV2", body: "assignUserRolesV2(context, ['x']);", effects: `[{"kind":"assign_roles","user_id":"u1","roles":["x"]}]`},
		{name: "removeUserRoles", body: "removeUserRoles(context.currentKnownSubject, ['staff']);", effects: `[{"kind":"remove_roles","user_id":"u1","roles":["staff"]}]`},
		{name: "getUniqueUserWithClaimValues one", body: "var u = getUniqueUserWithClaimValues({'http://wso2.org/claims/emailaddress': 'bob@example.com'}, context); Log.info(u.username + ' ' + u.roles.join());", want: "bob staff"},
		{name: "getUniqueUserWithClaimValues none", body: "Log.info(getUniqueUserWithClaimValues({'http://wso2.org/claims/emailaddress': 'x@example.com'}, context));", want: "null"},
		{name: "getUniqueUserWithClaimValues several", body: "getUniqueUserWithClaimValues({'http://wso2.org/claims/country': 'NL'}, context);", wantErr: "more than one user"},
		{name: "getUsersWithClaimValues", body: "var us = getUsersWithClaimValues({'http://wso2.org/claims/country': 'NL'}, context); Log.info(us.map(function (u) { return u.username; }).join());", want: "alice,bob"},
		{name: "getUserClaimValue", body: "Log.info(getUserClaimValue(context.currentKnownSubject, 'http://wso2.org/claims/emailaddress') + ' ' + getUserClaimValue(context.currentKnownSubject, 'x'));", want: "alice@example.com null"},
		{name: "getUserSessions", body: "var ss = getUserSessions(context.currentKnownSubject); var s = ss[0]; Log.info(ss.length + ' ' + s.id + ' ' + s.ip + ' ' + s.loginTime + ' ' + s.userAgent.browser + ' ' + s.userAgent.platform + ' ' + s.userAgent.device + ' ' + s.applications[0].appName + ' ' + ss[1].userAgent.device);",
			want: "3 s1 10.1.1.1 1000000 Chrome Windows Desktop wiki Mobile"},
		{name: "terminateUserSession", body: "Log.info(terminateUserSession(context.currentKnownSubject, 's2'));", want: "true", effects: `[{"kind":"terminate_session","user_id":"u1","session_id":"s2"}]`},
		{name: "isWithinSessionLimit", body: "var u = context.currentKnownSubject; Log.info(isWithinSessionLimit(u, {MaxSessionCount: 3}) + ' ' + isWithinSessionLimit(context, {maxSessionCount: 4}));", want: "false true"},
		{name: "setCookie plain", body: "setCookie(context.response, 'theme', 'dark', {'max-age': 60, path: '/', httpOnly: true, secure: 'true', sameSite: 'Strict'});",
			effects: `[{"kind":"set_cookie","cookie":{"name":"theme","value":"dark","max_age":60,"path":"/","http_only":true,"secure":true,"same_site":"Strict"}}]`},
		{name: "setCookie signed", body: "setCookie(context.response, 'dev', 'u1', {sign: true});",
			effects: `[{"kind":"set_cookie","cookie":{"name":"dev","value":"` + signed + `"}}]`},
		{name: "setCookie bad value", body: "setCookie(context.response, 'x', 'a;b');", wantErr: "characters a cookie cannot carry"},
		{name: "getCookieValue", body: "var r = context.request; Log.info([getCookieValue(r, 'plain'), getCookieValue(r, 'absent'), getCookieValue(r, 'dev', {validateSignature: true}), getCookieValue(r, 'tampered', {validateSignature: true}), getCookieValue(r, 'moved', {validateSignature: true}), getCookieValue(r, 'enc', {decrypt: true}), getCookieValue(r, 'plain', {decrypt: true})].join('/'));",
			want: "v1//u1///hidden/"},
		{name: "request", body: "var r = context.request; Log.info(r.ip + ' ' + r.headers['User-Agent'] + ' ' + r.headers['x-forwarded-for'] + ' ' + r.params.login_hint[0] + ' ' + r.cookies.plain);",
			want: "203.0.113.9 Firefox/118.0 203.0.113.9 alice v1"},
		{name: "response headers", body: "context.response.headers['X-Login-Risk'] = 'low'; Log.info(context.response.headers['X-Login-Risk']);",
			want: "low", effects: `[{"kind":"response_header","name":"X-Login-Risk","value":"low"}]`},
		{name: "response header splitting refused", body: "context.response.headers['X-A'] = 'a\\r\\nSet-Cookie: x=1';", wantErr: "not a valid header"},
		{name: "sendEmail", body: "sendEmail(context.currentKnownSubject, 'new-login', {ip: context.request.ip});",
			effects: `[{"kind":"send_email","user_id":"u1","template":"new-login","placeholders":{"ip":"203.0.113.9"}}]`},
		{name: "getSecretByName", body: "Log.info(getSecretByName('risk-api-key').length);", want: "6"},
		{name: "getSecretByName missing fails closed even if caught", body: "try { getSecretByName('nope'); } catch (e) { Log.info('caught'); }", wantErr: "getSecretByName(nope)"},
		{name: "getMaskedValue", body: "Log.info(getMaskedValue('alice@example.com') + ' ' + getMaskedValue('ab'));", want: "a***************m **"},
		{name: "getValueFromDecodedAssertion", body: "var t = '" + tok + "'; Log.info([getValueFromDecodedAssertion(t, 'sub', true), getValueFromDecodedAssertion(t, 'amr', true), getValueFromDecodedAssertion(t, 'level'), getValueFromDecodedAssertion(t, 'kid', false), getValueFromDecodedAssertion(t, 'x', true)].join(' '));",
			want: `alice ["pwd"] 2 k1 `},
		{name: "getValueFromDecodedAssertion not a JWT", body: "getValueFromDecodedAssertion('abc', 'sub', true);", wantErr: "not a JWT"},
		{name: "httpGet outside the allow-list", body: "httpGet('https://evil.example.net/x', {onSuccess: function () {}});", wantErr: "not in the allow-list"},
		{name: "httpGet not http", body: "httpGet('file:///etc/passwd', {onSuccess: function () {}});", wantErr: "is not an http(s) URL"},
		{name: "loadLocalLibrary", body: "var lib = loadLocalLibrary('helpers.js'); Log.info(lib.double(21) + lib.tag);", want: "42lib"},
		{name: "loadLocalLibrary missing", body: "loadLocalLibrary('nope.js');", wantErr: "loadLocalLibrary(nope.js)"},
		{name: "analytics not available", body: "callChoreo({}, {}, {});", wantErr: "callChoreo is not available in Latch"},
		{name: "Log levels", body: "Log.debug('d'); Log.info('i', 2); Log.warn('w'); Log.error('e');", want: "d|i 2|w|e"},
		{name: "selectAcrFrom none", body: "Log.info('[' + selectAcrFrom(context, ['gold']) + ']');", want: "[]"},
		{name: "frozen built-ins", body: "Object.prototype.polluted = 1; Array.prototype.push = null; Log.info(({}).polluted + ' ' + typeof [].push);", want: "undefined function"},
		{name: "no eval", body: "Log.info(typeof eval);", want: "undefined"},
		{name: "deterministic clock", body: "Log.info(new Date().toISOString());", want: "2026-03-04T05:06:07.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := runBody(t, e, tt.body, req)
			if tt.wantErr != "" {
				var se *ScriptError
				if !errors.As(err, &se) || !strings.Contains(se.Detail, tt.wantErr) {
					t.Fatalf("err = %v, want a ScriptError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got := logs(d); got != tt.want {
				t.Errorf("logs = %q, want %q", got, tt.want)
			}
			got := "null"
			if len(d.Effects) > 0 {
				got = js(d.Effects)
			}
			if want := tt.effects; (want == "" && got != "null") || (want != "" && got != want) {
				t.Errorf("effects = %s, want %s", got, want)
			}
		})
	}
}

// TestEffectsReportedOnce replays a login whose callbacks ask for effects
// and checks that each evaluation reports only the new ones.
func TestEffectsReportedOnce(t *testing.T) {
	e := newEngine(t, nil)
	s := mustCompile(t, e, `function onLoginRequest(context) {
		Log.info('start');
		executeStep(1, {onSuccess: function (context) {
			assignUserRoles(context.currentKnownSubject, ['seen']);
			Log.info('after 1');
			executeStep(2, {onSuccess: function (context) {
				sendEmail(context.currentKnownSubject, 'welcome', {});
			}});
		}});
	}`)
	in := Input{Steps: twoSteps()}
	wants := []struct{ effects, logs string }{
		{"", "start"},
		{"assign_roles", "after 1"},
		{"send_email", ""},
	}
	hist := [][]Entry{nil, {step(1, true, "u1")}, {step(1, true, "u1"), step(2, true, "u1")}}
	for i, h := range hist {
		in.History = h
		d := eval(t, e, s, in)
		var kinds []string
		for _, ef := range d.Effects {
			kinds = append(kinds, string(ef.Kind))
		}
		if got := strings.Join(kinds, ","); got != wants[i].effects {
			t.Errorf("evaluation %d: effects %q, want %q", i, got, wants[i].effects)
		}
		if got := logs(d); got != wants[i].logs {
			t.Errorf("evaluation %d: logs %q, want %q", i, got, wants[i].logs)
		}
	}
}

func TestValuesHandedOut(t *testing.T) {
	e := newEngine(t, nil)
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{name: "cyclic prompt data", body: "var a = {}; a.self = a; prompt('t', a, {});", wantErr: "nested more than 64 levels"},
		{name: "huge prompt data", body: "prompt('t', {s: 'x'.repeat(100000)}, {});", wantErr: "larger than"},
		{name: "huge claim value", body: "context.currentKnownSubject.localClaims['x'] = 'x'.repeat(100000);", wantErr: "longer than"},
		{name: "function in authenticatorParams", body: "executeStep(2, {authenticatorParams: {common: {f: function () {}}}}, {});", wantErr: ""},
		{name: "too many steps", body: "for (var i = 0; i < 200; i++) { executeStep(2); }", wantErr: "too many steps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runBody(t, e, tt.body, Request{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var se *ScriptError
			if !errors.As(err, &se) || !strings.Contains(se.Detail, tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
