package main

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // G505: SHA-1 is what the k-anonymity range protocol names; it is not used for security here
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/authn"
	"github.com/latchid/latch/sdk/guest"
	"github.com/latchid/latch/sdk/host"
	"github.com/latchid/latch/sdk/plugin"
)

// Reasons of a not_authenticated answer.
const (
	// ReasonBreached: the password appears in the corpus at least
	// min_count times.
	ReasonBreached = "password_breached"
	// ReasonNoPassword: the request carries no password.
	ReasonNoPassword = "no_password"
	// ReasonNoKnownSubject: no earlier step established a subject.
	ReasonNoKnownSubject = "no_known_subject"
	// ReasonCheckFailed: the service could not be asked and on_error is
	// "deny".
	ReasonCheckFailed = "breach_check_failed"
)

// prefixLen is how many hex digits of the hash are sent: 5, so that each
// range holds hundreds of hashes and the password cannot be told apart.
const prefixLen = 5

const configSchema = `{
  "type": "object",
  "properties": {
    "range_url": {"type": "string"},
    "min_count": {"type": "integer", "minimum": 1},
    "on_error": {"enum": ["allow", "deny"]},
    "param": {"type": "string", "minLength": 1},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 30000}
  },
  "required": ["range_url"],
  "additionalProperties": false
}`

// config is the operator's configuration.
type config struct {
	// RangeURL is the range endpoint; the 5-digit prefix is appended
	// ("https://breach.example.com/range/").
	RangeURL string `json:"range_url"`
	// MinCount is how many sightings make a password breached; default 1.
	MinCount int64 `json:"min_count"`
	// OnError is what to do when the service cannot be asked: "allow"
	// (the default: a breach check must not lock everyone out) or "deny".
	OnError string `json:"on_error"`
	// Param is the form parameter holding the password; default
	// "password".
	Param string `json:"param"`
	// TimeoutMillis bounds the query; 0: the host's default.
	TimeoutMillis int64 `json:"timeout_ms"`
}

// checker is the authenticator. Every request carries its instance's
// configuration, parsed once per distinct configuration.
type checker struct {
	configs plugin.Configs[*config]
}

// Configure checks the configuration.
func (c *checker) Configure(raw []byte) error {
	_, err := c.config(raw)
	return err
}

// config returns the parsed configuration raw.
func (c *checker) config(raw []byte) (*config, error) {
	if c.configs.Parse == nil {
		c.configs.Parse = parseConfig
	}
	return c.configs.Get(raw)
}

// parseConfig checks and parses a configuration strictly.
func parseConfig(raw []byte) (*config, error) {
	cfg := config{MinCount: 1, OnError: "allow", Param: "password"}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, plugin.ErrInvalidRequest.WithMessage("configuration: " + err.Error())
	}
	u, err := url.Parse(cfg.RangeURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, plugin.ErrInvalidRequest.WithMessage("range_url: want an absolute https URL")
	}
	if cfg.MinCount < 1 {
		return nil, plugin.ErrInvalidRequest.WithMessage("min_count: must be at least 1")
	}
	if cfg.OnError != "allow" && cfg.OnError != "deny" {
		return nil, plugin.ErrInvalidRequest.WithMessage(`on_error: want "allow" or "deny"`)
	}
	return &cfg, nil
}

// Authenticate confirms the known subject when the password of this
// request is not breached.
func (c *checker) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	cfg, err := c.config(req.Config)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if req.KnownSubject == "" {
		return authn.NotAuthenticated(ReasonNoKnownSubject), nil
	}
	pw := req.Params[cfg.Param]
	if len(pw) == 0 || pw[0] == "" {
		return authn.NotAuthenticated(ReasonNoPassword), nil
	}
	count, err := sightings(cfg, pw[0])
	if err != nil {
		guest.Log(guest.LevelWarn, "breachedpw: range query failed: "+err.Error())
		if cfg.OnError == "deny" {
			return authn.NotAuthenticated(ReasonCheckFailed), nil
		}
		return authn.Authenticated(req.KnownSubject, nil), nil
	}
	if count >= cfg.MinCount {
		return authn.NotAuthenticated(ReasonBreached), nil
	}
	return authn.Authenticated(req.KnownSubject, nil), nil
}

// sightings asks the range endpoint how often the password was seen.
func sightings(cfg *config, password string) (int64, error) {
	sum := sha1.Sum([]byte(password)) //nolint:gosec // G401: see the import
	hexed := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := hexed[:prefixLen], hexed[prefixLen:]
	resp, err := host.HTTP(abi.HTTPRequest{
		Method:        "GET",
		URL:           cfg.RangeURL + prefix,
		Headers:       map[string][]string{"Add-Padding": {"true"}},
		TimeoutMillis: cfg.TimeoutMillis,
	})
	if err != nil {
		return 0, err
	}
	if resp.Status != 200 {
		return 0, plugin.ErrUnavailable.WithMessage("range endpoint answered status " + strconv.Itoa(resp.Status))
	}
	return ParseRange(resp.Body, suffix), nil
}

// ParseRange returns the count of suffix in a range answer: lines of
// "SUFFIX:COUNT" (35 hex digits, then a decimal count), compared without
// regard to case. Padding lines (count 0) and malformed lines count for
// nothing.
func ParseRange(body []byte, suffix string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		s, n, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(s, suffix) {
			continue
		}
		count, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil || count < 0 {
			return 0
		}
		return count
	}
	return 0
}
