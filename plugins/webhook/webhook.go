package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
	"github.com/latchid/latch/sdk/provision"
)

// Headers of a delivery.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" of
	// "<t>.<body>" under the shared secret.
	HeaderSignature = "X-Latch-Signature"
	// HeaderEventID carries the event id, the same on every redelivery, so
	// that the receiver can drop repeats.
	HeaderEventID = "X-Latch-Event-Id"
)

// defaultRetryAfter is the wait asked for after a 5xx or 429 without a
// Retry-After header.
const defaultRetryAfter = 30 * time.Second

const configSchema = `{
  "type": "object",
  "properties": {
    "url": {"type": "string"},
    "secret": {"type": "string"},
    "resources": {"type": "array", "items": {"enum": ["user", "group"]}},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 30000}
  },
  "required": ["url", "secret"],
  "additionalProperties": false
}`

// config is the operator's configuration.
type config struct {
	// URL is the endpoint events are posted to.
	URL string `json:"url"`
	// Secret names the plugin secret (config: plugins[].secrets) holding
	// the HMAC key.
	Secret string `json:"secret"`
	// Resources limits the events sent to these resources; empty: all.
	Resources []string `json:"resources"`
	// TimeoutMillis bounds one delivery; 0: the host's default.
	TimeoutMillis int64 `json:"timeout_ms"`
}

// webhook is the provisioner. Every event carries its instance's
// configuration, parsed once per distinct configuration.
type webhook struct {
	configs plugin.Configs[*config]
}

// Configure checks the configuration.
func (w *webhook) Configure(raw []byte) error {
	_, err := w.config(raw)
	return err
}

// config returns the parsed configuration raw.
func (w *webhook) config(raw []byte) (*config, error) {
	if w.configs.Parse == nil {
		w.configs.Parse = parseConfig
	}
	return w.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	u, err := url.Parse(c.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, plugin.ErrInvalidRequest.WithMessage("url: want an absolute https URL")
	}
	if c.Secret == "" {
		return nil, plugin.ErrInvalidRequest.WithMessage("secret: the name of the signing secret is required")
	}
	for i, r := range c.Resources {
		if r != abi.ResourceUser && r != abi.ResourceGroup {
			return nil, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("resources[%d]: %q is not user or group", i, r))
		}
	}
	return &c, nil
}

// payload is the document posted.
type payload struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Op         string     `json:"op"`
	Resource   string     `json:"resource"`
	ResourceID string     `json:"resource_id"`
	ExternalID string     `json:"external_id,omitempty"`
	User       *abi.User  `json:"user,omitempty"`
	Group      *abi.Group `json:"group,omitempty"`
	Members    []string   `json:"members,omitempty"`
	SentAt     int64      `json:"sent_at"`
}

// receipt is what a receiver may answer: the id it gave the record.
type receipt struct {
	ID string `json:"id"`
}

// Push posts ev, signed. A 2xx is done (with the id from a JSON {"id": …}
// answer, if any); 429 and 5xx ask for a retry; another status fails the
// event for good.
func (w *webhook) Push(ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	cfg, err := w.config(ev.Config)
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	if len(cfg.Resources) > 0 && !slices.Contains(cfg.Resources, ev.Resource) {
		return provision.Skipped(), nil
	}
	key, err := host.Secret(ev.Tenant, cfg.Secret)
	if err != nil {
		return abi.ProvisionResponse{}, err
	}
	now := guest.Now()
	body, err := json.Marshal(payload{
		ID: ev.ID, Tenant: ev.Tenant, Op: ev.Op, Resource: ev.Resource, ResourceID: ev.ResourceID,
		ExternalID: ev.ExternalID, User: ev.User, Group: ev.Group, Members: ev.Members, SentAt: now.Unix(),
	})
	if err != nil {
		return abi.ProvisionResponse{}, fmt.Errorf("encoding the event: %w", err)
	}
	resp, err := host.HTTP(abi.HTTPRequest{
		Method: "POST",
		URL:    cfg.URL,
		Headers: map[string][]string{
			"Content-Type":  {"application/json"},
			HeaderEventID:   {ev.ID},
			HeaderSignature: {Sign(key, now, body)},
		},
		Body:          body,
		TimeoutMillis: cfg.TimeoutMillis,
	})
	if err != nil {
		if errors.Is(err, plugin.ErrForbidden) {
			return abi.ProvisionResponse{}, err // misconfigured: retrying will not help
		}
		return provision.Retry(defaultRetryAfter), nil
	}
	switch {
	case resp.Status >= 200 && resp.Status < 300:
		var r receipt
		_ = json.Unmarshal(resp.Body, &r) // an answer without an id is fine
		if r.ID == "" {
			r.ID = ev.ExternalID
		}
		return provision.Done(r.ID), nil
	case resp.Status == 429 || resp.Status >= 500:
		return provision.Retry(retryAfter(resp.Headers)), nil
	}
	return abi.ProvisionResponse{}, plugin.ErrInvalidRequest.WithMessage(fmt.Sprintf("the endpoint refused the event with status %d", resp.Status))
}

// retryAfter reads a Retry-After header in seconds.
func retryAfter(h map[string][]string) time.Duration {
	if v := h["Retry-After"]; len(v) > 0 {
		if s, err := strconv.Atoi(v[0]); err == nil && s > 0 && s <= 86400 {
			return time.Duration(s) * time.Second
		}
	}
	return defaultRetryAfter
}

// Sign returns the signature header of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>". Binding the
// time lets a receiver refuse replays of old deliveries.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
