// Package scim is the outbound SCIM 2.0 provisioner: it pushes users and
// groups to an external SCIM service (RFC 7644) and keeps them converged.
//
// Provisioner implements provision.Provisioner: one event becomes POST,
// PUT or DELETE requests against the target, and the id the target gave
// the record is returned as the event's external id. Outbox makes delivery
// durable: changes are queued in the kernel store's plugin key-value space
// (namespace Namespace), delivered in order per record, retried with
// exponential backoff while the target is down, and moved to a dead-letter
// list when they fail for good. Sink feeds the outbox from the audit event
// bus, so every user and group change the node records is provisioned.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/internal/safehttp"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/provision"
)

// Config configures a Provisioner.
type Config struct {
	// URL is the target's SCIM root, such as https://scim.example.com/scim2.
	URL string `json:"url"`
	// Token is a static bearer token for the target. Leave it empty to
	// get tokens with the client credentials grant instead.
	Token string `json:"token,omitempty"`
	// TokenURL, ClientID, ClientSecret and Scopes configure the client
	// credentials grant (RFC 6749 section 4.4) against the target's
	// authorization server.
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// Timeout bounds one HTTP request; 0 means 10 seconds.
	Timeout time.Duration `json:"timeout,omitempty"`
	// AllowPrivate lets the provisioner reach loopback, private and
	// link-local addresses (a target on the same network). Off by
	// default, so a misconfigured URL cannot be used to reach internal
	// services.
	AllowPrivate bool `json:"allow_private,omitempty"`
}

// Resolver returns the id the target gave a local record, for group
// members.
type Resolver func(ctx context.Context, tenantID, resource, localID string) (string, bool, error)

// Provisioner pushes changes to one SCIM target.
type Provisioner struct {
	cfg     Config
	base    *url.URL
	client  *http.Client
	resolve Resolver
}

// ErrBlockedAddress is returned when the target resolves to an address the
// configuration does not allow (see Config.AllowPrivate); it is the SSRF
// guard's safehttp.ErrForbiddenAddress.
var ErrBlockedAddress = safehttp.ErrForbiddenAddress

// New checks cfg and returns a Provisioner. resolve maps member ids of
// groups; nil pushes groups without members.
func New(cfg Config, resolve Resolver) (*Provisioner, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("provision.scim: url %q: must be an absolute http(s) URL without user, query or fragment", cfg.URL)
	}
	if cfg.Token == "" && (cfg.TokenURL == "" || cfg.ClientID == "" || cfg.ClientSecret == "") {
		return nil, errors.New("provision.scim: set token, or token_url, client_id and client_secret")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	transport := safehttp.Transport(cfg.AllowPrivate, cfg.Timeout)
	transport.MaxIdleConnsPerHost = 4
	base := &http.Client{Transport: transport, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	client := base
	if cfg.Token == "" {
		cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.TokenURL, Scopes: cfg.Scopes}
		client = cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, base))
		client.Timeout = cfg.Timeout
	}
	return &Provisioner{cfg: cfg, base: u, client: client, resolve: resolve}, nil
}

const (
	schemaUser   = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	contentType  = "application/scim+json"
	maxReplySize = 1 << 20
)

// Push implements provision.Provisioner.
func (p *Provisioner) Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	switch ev.Resource {
	case abi.ResourceUser:
		if ev.User == nil {
			return abi.ProvisionResponse{}, fault.New(fault.CodeInvalidRequest, "a user event without its user")
		}
		return p.push(ctx, ev, "/Users", "userName", ev.User.Username, func() (map[string]any, error) { return userBody(ev.User), nil })
	case abi.ResourceGroup:
		if ev.Group == nil {
			return abi.ProvisionResponse{}, fault.New(fault.CodeInvalidRequest, "a group event without its group")
		}
		return p.push(ctx, ev, "/Groups", "displayName", ev.Group.Name, func() (map[string]any, error) { return p.groupBody(ctx, ev) })
	}
	return abi.ProvisionResponse{Outcome: abi.ProvisionSkipped}, nil
}

func (p *Provisioner) push(ctx context.Context, ev abi.ProvisionEvent, endpoint, key, value string, body func() (map[string]any, error)) (abi.ProvisionResponse, error) {
	ext := ev.ExternalID
	if ev.Op == abi.ProvisionDelete {
		if ext == "" {
			found, err := p.find(ctx, endpoint, key, value)
			if err != nil || found == "" {
				return done(""), err
			}
			ext = found
		}
		st, _, err := p.call(ctx, http.MethodDelete, endpoint+"/"+url.PathEscape(ext), nil)
		if err != nil {
			return abi.ProvisionResponse{}, err
		}
		if st != http.StatusNoContent && st != http.StatusOK && st != http.StatusNotFound {
			return abi.ProvisionResponse{}, unexpected(st)
		}
		return done(ext), nil
	}
	b, err := body()
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	if ext != "" {
		st, reply, err := p.call(ctx, http.MethodPut, endpoint+"/"+url.PathEscape(ext), b)
		switch {
		case err != nil:
			return abi.ProvisionResponse{}, err
		case st == http.StatusOK:
			return done(idOf(reply, ext)), nil
		case st != http.StatusNotFound:
			return abi.ProvisionResponse{}, unexpected(st)
		}
		// The target lost the record: create it again.
	}
	st, reply, err := p.call(ctx, http.MethodPost, endpoint, b)
	switch {
	case err != nil:
		return abi.ProvisionResponse{}, err
	case st == http.StatusCreated || st == http.StatusOK:
		return done(idOf(reply, "")), nil
	case st != http.StatusConflict:
		return abi.ProvisionResponse{}, unexpected(st)
	}
	// The record exists at the target already (an earlier delivery whose
	// answer was lost, or a record made there): adopt and replace it.
	found, err := p.find(ctx, endpoint, key, value)
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	if found == "" {
		return abi.ProvisionResponse{}, fault.New(fault.CodeConflict, "the target refused the record as a duplicate but does not list it")
	}
	st, reply, err = p.call(ctx, http.MethodPut, endpoint+"/"+url.PathEscape(found), b)
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	if st != http.StatusOK {
		return abi.ProvisionResponse{}, unexpected(st)
	}
	return done(idOf(reply, found)), nil
}

func done(ext string) abi.ProvisionResponse {
	return abi.ProvisionResponse{Outcome: abi.ProvisionDone, ExternalID: ext}
}

func idOf(reply map[string]any, fallback string) string {
	if id, ok := reply["id"].(string); ok && id != "" {
		return id
	}
	return fallback
}

// find looks a record up at the target by its unique name.
func (p *Provisioner) find(ctx context.Context, endpoint, key, value string) (string, error) {
	lit, err := json.Marshal(value)
	if err != nil {
		return "", fmt.Errorf("encoding filter value: %w", err)
	}
	q := url.Values{"filter": {key + " eq " + string(lit)}, "attributes": {"id"}}
	st, reply, err := p.call(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	if st != http.StatusOK {
		return "", unexpected(st)
	}
	res, _ := reply["Resources"].([]any)
	if len(res) != 1 {
		return "", nil
	}
	m, _ := res[0].(map[string]any)
	id, _ := m["id"].(string)
	return id, nil
}

// call sends one request. Transport failures, 429 and 5xx answers are a
// *provision.RetryError; a refused address is a permanent failure.
func (p *Provisioner) call(ctx context.Context, method, path string, body map[string]any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding scim body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base.String()+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("building scim request: %w", err)
	}
	req.Header.Set("Accept", contentType)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrBlockedAddress) {
			return 0, nil, fault.New(fault.CodeForbidden, "the SCIM target's address is not allowed").WithCause(err)
		}
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("calling the scim target: %w", ctx.Err())
		}
		return 0, nil, &provision.RetryError{}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplySize))
	if err != nil {
		return 0, nil, &provision.RetryError{}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		after := time.Duration(0)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s < 3600 {
			after = time.Duration(s) * time.Second
		}
		return 0, nil, &provision.RetryError{After: after}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// An expired or revoked token: the next attempt fetches a new one.
		return 0, nil, &provision.RetryError{}
	}
	var reply map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &reply)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusConflict {
		detail, _ := reply["detail"].(string)
		if len(detail) > 200 {
			detail = detail[:200]
		}
		return 0, nil, fault.New(fault.CodeInvalidRequest, fmt.Sprintf("the SCIM target refused %s %s: %d %s", method, strings.SplitN(path, "?", 2)[0], resp.StatusCode, detail))
	}
	return resp.StatusCode, reply, nil
}

func unexpected(status int) error {
	return fault.New(fault.CodeInternal, fmt.Sprintf("the SCIM target answered an unexpected status %d", status))
}

// userBody is the SCIM form of a user. The password never leaves Latch.
func userBody(u *abi.User) map[string]any {
	b := map[string]any{"schemas": []any{schemaUser}, "userName": u.Username, "active": u.Enabled, "externalId": u.ID}
	name := map[string]any{}
	if u.GivenName != "" {
		name["givenName"] = u.GivenName
	}
	if u.FamilyName != "" {
		name["familyName"] = u.FamilyName
	}
	if len(name) > 0 {
		b["name"] = name
	}
	if u.DisplayName != "" {
		b["displayName"] = u.DisplayName
	}
	if u.Email != "" {
		b["emails"] = []any{map[string]any{"value": u.Email, "primary": true}}
	}
	if u.PhoneNumber != "" {
		b["phoneNumbers"] = []any{map[string]any{"value": u.PhoneNumber, "primary": true}}
	}
	return b
}

// groupBody is the SCIM form of a group, its members named by the ids
// the target gave them. A member not yet at the target makes the push
// wait (its own create is ahead in the queue or being retried).
func (p *Provisioner) groupBody(ctx context.Context, ev abi.ProvisionEvent) (map[string]any, error) {
	b := map[string]any{"schemas": []any{schemaGroup}, "displayName": ev.Group.Name, "externalId": ev.Group.ID}
	if p.resolve == nil {
		return b, nil
	}
	members := make([]any, 0, len(ev.Members))
	for _, id := range ev.Members {
		ext, ok, err := p.resolve(ctx, ev.Tenant, abi.ResourceUser, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &provision.RetryError{}
		}
		members = append(members, map[string]any{"value": ext, "type": "User"})
	}
	b["members"] = members
	return b, nil
}

var _ provision.Provisioner = (*Provisioner)(nil)
