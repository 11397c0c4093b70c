package login

import (
	"bytes"
	_ "embed" // the WebAuthn page and its script
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
)

// PathWebAuthnScript is the script of the WebAuthn step page, below
// PathAssets.
const PathWebAuthnScript = "/webauthn.js"

//go:embed ceremony/webauthn.html
var webauthnBody string

//go:embed ceremony/webauthn.js
var webauthnScript []byte

// webauthnTemplate is the WebAuthn step page: the embedded layout with a
// body of its own.
var webauthnTemplate = sync.OnceValues(func() (*template.Template, error) {
	layout, err := templateFS.ReadFile("templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("reading layout: %w", err)
	}
	t, err := template.New("layout.html").Parse(string(layout))
	if err != nil {
		return nil, fmt.Errorf("parsing layout: %w", err)
	}
	if _, err := t.New("webauthn.html").Parse(webauthnBody); err != nil {
		return nil, fmt.Errorf("parsing webauthn page: %w", err)
	}
	return t, nil
})

// ceremony is a WebAuthn challenge's data in the form the page's script
// reads: {"mode": "create"|"get", "options": {"publicKey": {…}}}.
type ceremony struct {
	Mode string
	raw  []byte
}

// webauthnCeremony reads a ChallengeWebAuthn's data: the form above, or
// (abi's plain form) the bare PublicKeyCredentialCreationOptions or
// RequestOptions, with or without the "publicKey" wrapper; creation
// options are the ones that name a user.
func webauthnCeremony(data []byte) (ceremony, error) {
	var d struct {
		Mode    string          `json:"mode"`
		Options json.RawMessage `json:"options"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return ceremony{}, fmt.Errorf("reading webauthn challenge data: %w", err)
	}
	if d.Mode == "create" || d.Mode == "get" {
		return ceremony{Mode: d.Mode, raw: data}, nil
	}
	var bare struct {
		PublicKey json.RawMessage `json:"publicKey"`
		User      json.RawMessage `json:"user"`
		Challenge json.RawMessage `json:"challenge"`
	}
	if err := json.Unmarshal(data, &bare); err != nil {
		return ceremony{}, fmt.Errorf("reading webauthn challenge data: %w", err)
	}
	opts := data
	if len(bare.PublicKey) > 0 {
		opts = bare.PublicKey
		if err := json.Unmarshal(opts, &bare); err != nil {
			return ceremony{}, fmt.Errorf("reading webauthn challenge data: %w", err)
		}
	}
	if len(bare.Challenge) == 0 {
		return ceremony{}, fmt.Errorf("reading webauthn challenge data: no challenge")
	}
	mode := "get"
	if len(bare.User) > 0 {
		mode = "create"
	}
	raw, err := json.Marshal(map[string]any{"mode": mode, "options": map[string]json.RawMessage{"publicKey": opts}})
	if err != nil {
		return ceremony{}, fmt.Errorf("reading webauthn challenge data: %w", err)
	}
	return ceremony{Mode: mode, raw: raw}, nil
}

type webauthnPage struct {
	page
	Challenge, Action, Flow, CSRF, Script                              string
	Start, Waiting, Unsupported, NoScript, NicknameLabel, OptionsLabel string
	Create                                                             bool
	Options                                                            []option
}

// renderWebAuthn shows a WebAuthn challenge: a page whose script runs the
// ceremony the challenge's data describes ({"mode": "create"|"get",
// "options": …}) and posts the credential back in the step's form. The
// page needs JavaScript, and says so without it; the other options of the
// step stay reachable.
func (s *Service) renderWebAuthn(c *fiber.Ctx, t Tenant, pg Page, f *flow, csrf, current string, opts []*extension.Instance, ch *abi.Challenge) error {
	tmpl, err := webauthnTemplate()
	if err != nil {
		return s.fail(c, pg, err)
	}
	d, err := webauthnCeremony(ch.Data)
	if err != nil {
		return s.fail(c, pg, err)
	}
	p := s.pageFor(c, pg, "login.title")
	p.Message = text(p.Lang, "webauthn.intro."+d.Mode)
	if ch.Error != "" {
		p.Error = text(p.Lang, "webauthn.failed")
	}
	wp := webauthnPage{
		page: p, Challenge: string(d.raw), Action: s.basePath + t.Base + PathLogin, Flow: f.ID, CSRF: csrf,
		Script: s.basePath + PathAssets + PathWebAuthnScript, Create: d.Mode == "create",
		Start: text(p.Lang, "webauthn.start."+d.Mode), Waiting: text(p.Lang, "webauthn.waiting"),
		Unsupported: text(p.Lang, "webauthn.unsupported"), NoScript: text(p.Lang, "webauthn.noscript"),
		NicknameLabel: text(p.Lang, "field.nickname"), OptionsLabel: text(p.Lang, "login.options"),
	}
	if f.Subject == "" && len(opts) > 1 {
		for _, o := range opts {
			if o.Name() != current {
				wp.Options = append(wp.Options, option{
					URL:   s.basePath + t.Base + PathLogin + "?flow=" + url.QueryEscape(f.ID) + "&option=" + url.QueryEscape(o.Name()),
					Label: optionLabel(o),
				})
			}
		}
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", wp); err != nil {
		return s.fail(c, pg, fmt.Errorf("rendering webauthn page: %w", err))
	}
	setPageHeaders(c)
	// The page runs its own script, and nothing else.
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action *; frame-ancestors 'none'; base-uri 'none'")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	status := c.Response().StatusCode()
	if status < 400 {
		status = http.StatusOK
	}
	return c.Status(status).Send(buf.Bytes())
}

// webauthnJS serves the WebAuthn page's script.
func (s *Service) webauthnJS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Status(http.StatusOK).Send(webauthnScript)
}
