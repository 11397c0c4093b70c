package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
)

const configSchema = `{
  "type": "object",
  "properties": {
    "base_url": {"type": "string"},
    "token_secret": {"type": "string"},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 30000}
  },
  "required": ["base_url"],
  "additionalProperties": false
}`

// config is the operator's configuration.
type config struct {
	// BaseURL is the directory's API root ("https://hr.example.com/api").
	BaseURL string `json:"base_url"`
	// TokenSecret names the plugin secret sent as a bearer token; empty:
	// no Authorization header.
	TokenSecret string `json:"token_secret"`
	// TimeoutMillis bounds each request; 0: the host's default.
	TimeoutMillis int64 `json:"timeout_ms"`
}

// directory is the user store. Every request carries its instance's
// configuration, parsed once per distinct configuration.
type directory struct {
	configs plugin.Configs[*config]
}

// Configure checks the configuration.
func (d *directory) Configure(raw []byte) error {
	_, err := d.config(raw)
	return err
}

// config returns the parsed configuration raw.
func (d *directory) config(raw []byte) (*config, error) {
	if d.configs.Parse == nil {
		d.configs.Parse = parseConfig
	}
	return d.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" {
		return nil, plugin.ErrInvalidRequest.WithMessage("base_url: want an absolute https URL without a query")
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return &c, nil
}

// do sends one request to the directory and decodes a 2xx JSON answer into
// out; 404 is plugin.ErrNotFound, 401 (for authenticate) is returned as
// its status, anything else unavailable.
func (d *directory) do(raw []byte, tenant, method, path string, body, out any) (int, error) {
	cfg, err := d.config(raw)
	if err != nil {
		return 0, err
	}
	req := abi.HTTPRequest{
		Method:        method,
		URL:           cfg.BaseURL + path,
		Headers:       map[string][]string{"Accept": {"application/json"}},
		TimeoutMillis: cfg.TimeoutMillis,
	}
	if cfg.TokenSecret != "" {
		tok, err := host.Secret(tenant, cfg.TokenSecret)
		if err != nil {
			return 0, err
		}
		req.Headers["Authorization"] = []string{"Bearer " + string(tok)}
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encoding the request: %w", err)
		}
		req.Body = b
		req.Headers["Content-Type"] = []string{"application/json"}
	}
	resp, err := host.HTTP(req)
	if err != nil {
		return 0, err
	}
	switch {
	case resp.Status == 404:
		return resp.Status, plugin.ErrNotFound
	case resp.Status == 401 || resp.Status == 403:
		return resp.Status, nil
	case resp.Status < 200 || resp.Status > 299:
		return resp.Status, plugin.ErrUnavailable.WithMessage("the directory answered status " + strconv.Itoa(resp.Status))
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return resp.Status, plugin.ErrUnavailable.WithMessage("the directory's answer is not the expected JSON")
	}
	return resp.Status, nil
}

// GetUser reads GET <base>/users/<id>.
func (d *directory) GetUser(req abi.GetUserRequest) (abi.User, error) {
	if req.ID == "" {
		return abi.User{}, plugin.ErrNotFound
	}
	var u abi.User
	status, err := d.do(req.Config, req.Tenant, "GET", "/users/"+url.PathEscape(req.ID), nil, &u)
	if err != nil {
		return abi.User{}, err
	}
	if status != 200 || u.ID == "" {
		return abi.User{}, plugin.ErrUnavailable.WithMessage("the directory refused the lookup")
	}
	return u, nil
}

// FindUsers reads GET <base>/users?username=&email=&limit=&cursor=.
func (d *directory) FindUsers(req abi.FindUsersRequest) (abi.FindUsersResponse, error) {
	q := url.Values{}
	for k, v := range map[string]string{"username": req.Username, "email": req.Email, "cursor": req.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range req.Attributes {
		q.Set("attr."+k, v)
	}
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	path := "/users"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page struct {
		Users []abi.User `json:"users"`
		Next  string     `json:"next"`
	}
	status, err := d.do(req.Config, req.Tenant, "GET", path, nil, &page)
	if err != nil {
		return abi.FindUsersResponse{}, err
	}
	if status != 200 {
		return abi.FindUsersResponse{}, plugin.ErrUnavailable.WithMessage("the directory refused the search")
	}
	return abi.FindUsersResponse{Users: page.Users, Next: page.Next}, nil
}

// AuthenticateUser posts {"username","password"} to <base>/authenticate:
// 200 with the user authenticates (or reports the user locked or
// disabled), 401 refuses, 404 means the directory does not know the user.
func (d *directory) AuthenticateUser(req abi.AuthenticateUserRequest) (abi.AuthenticateUserResponse, error) {
	var u abi.User
	status, err := d.do(req.Config, req.Tenant, "POST", "/authenticate", map[string]string{"username": req.Username, "password": req.Password}, &u)
	switch {
	case err != nil && status == 404:
		return abi.AuthenticateUserResponse{Outcome: abi.UserUnknown}, nil
	case err != nil:
		return abi.AuthenticateUserResponse{}, err
	case status == 401 || status == 403:
		return abi.AuthenticateUserResponse{Outcome: abi.UserInvalidCredentials}, nil
	case u.ID == "":
		return abi.AuthenticateUserResponse{}, plugin.ErrUnavailable.WithMessage("the directory authenticated a user without an id")
	case u.Locked:
		return abi.AuthenticateUserResponse{Outcome: abi.UserLocked}, nil
	case !u.Enabled:
		return abi.AuthenticateUserResponse{Outcome: abi.UserDisabled}, nil
	}
	return abi.AuthenticateUserResponse{Outcome: abi.UserAuthenticated, User: &u}, nil
}
