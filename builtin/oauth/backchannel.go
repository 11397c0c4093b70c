package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/store"
)

// ClientSettingBackchannelLogoutURI is the key in store.Client.Settings of
// the URL a logout token is POSTed to when a session the client got tokens
// under ends (OpenID Connect Back-Channel Logout 1.0 section 2.2).
const ClientSettingBackchannelLogoutURI = "backchannel_logout_uri"

// ActionBackchannelLogout is recorded for each logout token delivery:
// success, or failure after the last attempt.
const ActionBackchannelLogout event.Action = "logout.backchannel"

const (
	// kindRPSessions is the store.Token kind, keyed by SSO session id, of
	// the clients that got codes under the session.
	kindRPSessions = "rp_sessions"
	// logoutTokenType is the JWS typ of logout tokens (Back-Channel Logout
	// 1.0 section 2.4).
	logoutTokenType = "logout+jwt" //nolint:gosec // G101: a JWS typ, not a credential.
	// backchannelEvent is the event of a logout token.
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenLifetime is the exp of a logout token after its iat.
	logoutTokenLifetime = 2 * time.Minute
	// backchannelAttempts and backchannelBackoff shape the retries of a
	// delivery: 1 s, then 2 s between attempts.
	backchannelAttempts = 3
	backchannelBackoff  = time.Second
	// backchannelTimeout bounds one attempt.
	backchannelTimeout = 5 * time.Second
	// maxLogoutReplyBytes caps what is read of an RP's answer (the
	// notifier's bodies are capped there; the answer is discarded).
	maxLogoutReplyBytes = 4 << 10
	// maxRPSessionClients bounds the clients tracked per session.
	maxRPSessionClients = 64
	// rpSessionsLifetime is how long a session's client list is kept when
	// the session has no expiry.
	rpSessionsLifetime = 30 * 24 * time.Hour
)

// rpSessions lists the clients that got codes under one SSO session.
type rpSessions struct {
	UserID  string   `json:"user_id"`
	Clients []string `json:"clients"`
}

// trackRP records that clientID got a code under sess, so that ending the
// session can notify it. Two codes issued at the same instant under one
// session may lose one client from the list; the cost is one missed
// notification, never a wrong one.
func (p *Provider) trackRP(ctx context.Context, t tenantInfo, sess *store.Session, clientID string) {
	var rec rpSessions
	tok, err := p.getJSON(ctx, t, kindRPSessions, sess.ID, &rec)
	replace := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.d.Log.WarnContext(ctx, "loading the session's clients", "err", err)
		return
	}
	if slices.Contains(rec.Clients, clientID) {
		return
	}
	if len(rec.Clients) >= maxRPSessionClients {
		return
	}
	rec.UserID = sess.UserID
	rec.Clients = append(rec.Clients, clientID)
	created, expires := time.Now().UTC(), sess.ExpiresAt
	if replace {
		created = tok.CreatedAt
	}
	if expires.IsZero() || expires.Before(created) {
		expires = created.Add(rpSessionsLifetime)
	}
	if err := p.putJSON(ctx, t, kindRPSessions, sess.ID, "", rec, created, expires, replace); err != nil {
		p.d.Log.WarnContext(ctx, "recording the session's clients", "err", err)
	}
}

// ClientSettingFrontchannelLogoutURI is the key in store.Client.Settings
// of the URL the signed-out page loads in an iframe when a session the
// client got tokens under ends (OpenID Connect Front-Channel Logout 1.0
// section 2). Its scheme, host and port must be those of one of the
// client's redirect URIs.
const ClientSettingFrontchannelLogoutURI = "frontchannel_logout_uri"

// ClientSettingFrontchannelLogoutSessionRequired is the key in
// store.Client.Settings that, set to a JSON true, makes the iframe's URL
// carry iss and sid query parameters (section 2). The ID tokens of every
// client carry sid.
const ClientSettingFrontchannelLogoutSessionRequired = "frontchannel_logout_session_required"

// logoutRPs notifies the clients that got codes under the ended session
// sess: each one that registered a backchannel_logout_uri gets a logout
// token, delivered in the background with retries, and the
// frontchannel_logout_uri of each one that registered one is returned, for
// the signed-out page to load in iframes.
func (p *Provider) logoutRPs(ctx context.Context, t tenantInfo, sess *store.Session) (frames []string) {
	var rec rpSessions
	if _, err := p.getJSON(ctx, t, kindRPSessions, sess.ID, &rec); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.d.Log.WarnContext(ctx, "loading the session's clients", "err", err)
		}
		return nil
	}
	if err := p.d.Store.DeleteToken(ctx, t.id, kindRPSessions, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.d.Log.WarnContext(ctx, "deleting the session's clients", "err", err)
	}
	for _, id := range rec.Clients {
		cl, err := p.d.Store.GetClientByClientID(ctx, t.id, id)
		if err != nil || !cl.Enabled {
			continue
		}
		if f := frontchannelURI(cl, t, sess); f != "" {
			frames = append(frames, f)
		}
		uri := settingString(cl.Settings, ClientSettingBackchannelLogoutURI)
		if uri == "" {
			continue
		}
		if err := safehttp.CheckURL(uri, p.d.AllowPrivateNetworks); err != nil {
			p.d.Log.WarnContext(ctx, "backchannel_logout_uri refused", "client_id", id, "err", err)
			continue
		}
		token, err := p.logoutToken(ctx, t, id, sess)
		if err != nil {
			p.d.Log.ErrorContext(ctx, "signing logout token", "client_id", id, "err", err)
			continue
		}
		go p.deliverLogout(context.WithoutCancel(ctx), t, id, uri, token)
	}
	return frames
}

// frontchannelURI returns the client's frontchannel_logout_uri for the
// ended session, with iss and sid when the client asked for them, or ""
// when it registered none or one that is not an absolute http(s) URL on
// the origin of one of its redirect URIs.
func frontchannelURI(cl store.Client, t tenantInfo, sess *store.Session) string {
	raw := settingString(cl.Settings, ClientSettingFrontchannelLogoutURI)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return ""
	}
	if !slices.ContainsFunc(cl.RedirectURIs, func(r string) bool {
		ru, err := url.Parse(r)
		return err == nil && ru.Scheme == u.Scheme && ru.Host == u.Host
	}) {
		return ""
	}
	if cl.Settings[ClientSettingFrontchannelLogoutSessionRequired] == true {
		q := u.Query()
		q.Set("iss", t.issuer)
		q.Set("sid", sess.ID)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// logoutToken signs the logout token of Back-Channel Logout 1.0 section
// 2.4 for one client: iss, aud, iat, exp, jti, sub, sid and the events
// claim, and no nonce.
func (p *Provider) logoutToken(ctx context.Context, t tenantInfo, clientID string, sess *store.Session) (string, error) {
	now := time.Now().UTC()
	claims := jwt.MapClaims{
		"iss": t.issuer, "aud": clientID, "iat": now.Unix(), "exp": now.Add(logoutTokenLifetime).Unix(),
		"jti": uuid.NewString(), "sub": sess.UserID, "sid": sess.ID,
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	tok, _, err := p.signer.Generate(withTenant(ctx, t), claims, &jwt.Headers{Extra: map[string]any{"typ": logoutTokenType}})
	return tok, err
}

// deliverLogout POSTs a logout token (section 2.5) through the SSRF-guarded
// client, retrying network failures and 5xx answers; a 4xx answer is
// final.
func (p *Provider) deliverLogout(ctx context.Context, t tenantInfo, clientID, uri, token string) {
	var err error
	for attempt := range backchannelAttempts {
		if attempt > 0 {
			time.Sleep(backchannelBackoff << (attempt - 1))
		}
		var retry bool
		retry, err = p.postLogout(ctx, uri, token)
		if err == nil || !retry {
			break
		}
	}
	outcome, detail := event.OutcomeSuccess, map[string]any{"uri": truncate(uri, 200)}
	if err != nil {
		outcome, detail["reason"] = event.OutcomeFailure, truncate(err.Error(), 300)
		p.d.Log.WarnContext(ctx, "back-channel logout failed", "client_id", clientID, "err", err)
	}
	p.d.Audit.Publish(event.Event{
		Tenant: t.id, Time: time.Now().UTC(), Actor: "system", Action: ActionBackchannelLogout,
		Target: event.Ref("client", clientID), Outcome: outcome, Detail: detail,
	})
}

// postLogout makes one delivery attempt and says whether a failure may be
// retried.
func (p *Provider) postLogout(ctx context.Context, uri, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return false, fmt.Errorf("building logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.notifier.Do(req)
	if err != nil {
		return !errors.Is(err, safehttp.ErrForbiddenAddress), fmt.Errorf("posting logout token: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return false, nil
	case resp.StatusCode >= 500:
		return true, fmt.Errorf("posting logout token: status %d", resp.StatusCode)
	}
	return false, fmt.Errorf("posting logout token: status %d", resp.StatusCode)
}
