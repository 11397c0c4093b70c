// Package emailotp is the authn.email_otp extension: a one-time code sent
// to the user's email address, as a second factor. It confirms the user
// an earlier step identified (the request's KnownSubject) and never starts
// a login.
//
// The first request of the step sends a code (digits from crypto/rand) in
// a text and HTML email, in English or German after the browser's
// Accept-Language; the step's state keeps only a hash of the code, bound
// to the login flow, with its expiry and attempts. The user types the code;
// "resend" sends a new one, at most once per resend_seconds.
//
// Mail goes out through an SMTP server (go-mail), over STARTTLS or TLS
// unless the operator turns that off for a relay on loopback.
package emailotp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "authn.email_otp"

// DepStore is the dependency the instance takes: the kernel store, to find
// the user's email address.
const DepStore = "store"

// AMR of an emailed code: a one-time password (RFC 8176).
const AMR = "otp"

const (
	codeParam   = "code"
	resendParam = "resend"
	stateV      = 1
)

//go:embed config.schema.json
var configSchema []byte

//go:embed templates/*
var templateFS embed.FS

// Module returns the authn.email_otp module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "One-time codes sent by email (SMTP) as a second factor.",
	}
}

// Users is what the instance reads from the store.
type Users interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
}

// Authenticator is an authn.email_otp instance; its exported fields are
// its configuration.
type Authenticator struct {
	SMTPAddr      string `json:"smtp_addr,omitempty"`
	From          string `json:"from,omitempty"`
	Username      string `json:"username,omitempty"`
	PasswordFile  string `json:"password_file,omitempty"`
	TLS           string `json:"tls,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	CodeLength    int    `json:"code_length,omitempty"`
	TTLSeconds    int    `json:"ttl_seconds,omitempty"`
	MaxAttempts   int    `json:"max_attempts,omitempty"`
	ResendSeconds int    `json:"resend_seconds,omitempty"`

	users    Users
	password string
	now      func() time.Time
	text     map[string]*texttemplate.Template
	html     map[string]*htmltemplate.Template
	// send delivers a message; tests may not replace it: they run a
	// real SMTP server.
	send func(ctx context.Context, m *mail.Msg) error
}

// Provision reads the configuration and the store.
func (a *Authenticator) Provision(ctx context.Context, env extension.Env) error {
	a.Issuer = cmp.Or(a.Issuer, "Latch")
	a.CodeLength = cmp.Or(a.CodeLength, 6)
	a.TTLSeconds = cmp.Or(a.TTLSeconds, 300)
	a.MaxAttempts = cmp.Or(a.MaxAttempts, 5)
	a.ResendSeconds = cmp.Or(a.ResendSeconds, 30)
	a.TLS = cmp.Or(a.TLS, "starttls")
	a.now = time.Now
	d, _ := env.Dep(DepStore)
	users, ok := d.(Users)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want the kernel store", ID, DepStore, d)
	}
	a.users = users
	if a.PasswordFile != "" {
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			return fmt.Errorf("provisioning %s: reading password_file: %w", ID, err)
		}
		a.password = strings.TrimRight(string(b), "\r\n")
	}
	a.text, a.html = map[string]*texttemplate.Template{}, map[string]*htmltemplate.Template{}
	for _, lang := range []string{"en", "de"} {
		t, err := texttemplate.ParseFS(templateFS, "templates/code."+lang+".txt")
		if err != nil {
			return fmt.Errorf("provisioning %s: %w", ID, err)
		}
		h, err := htmltemplate.ParseFS(templateFS, "templates/code."+lang+".html")
		if err != nil {
			return fmt.Errorf("provisioning %s: %w", ID, err)
		}
		a.text[lang], a.html[lang] = t, h
	}
	a.send = a.smtpSend
	return nil
}

// Validate checks that a configured server has a sender, and that a
// password never travels over a plain connection.
func (a *Authenticator) Validate() error {
	var errs []extension.FieldError
	if a.SMTPAddr != "" && a.From == "" {
		errs = append(errs, extension.FieldError{Path: "config.from", Message: "is required with smtp_addr"})
	}
	if a.PasswordFile != "" && a.TLS == "none" {
		errs = append(errs, extension.FieldError{Path: "config.tls", Message: "must not be none when a password is sent"})
	}
	if len(errs) > 0 {
		return &extension.ConfigError{Fields: errs}
	}
	return nil
}

// RequiresKnownSubject reports that an emailed code is a second factor.
func (a *Authenticator) RequiresKnownSubject() bool { return true }

// state is what the step keeps between its requests (server-side, in
// the login flow).
type state struct {
	V        int       `json:"v"`
	CodeHash string    `json:"code_hash,omitempty"`
	Expires  time.Time `json:"expires"`
	SentAt   time.Time `json:"sent_at"`
	Attempts int       `json:"attempts,omitempty"`
}

// Authenticate runs the step.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	if req.KnownSubject == "" {
		return abi.AuthenticateResponse{}, fault.InvalidRequest.WithMessage("authn.email_otp is a second factor: an earlier step must identify the user")
	}
	if a.SMTPAddr == "" {
		return abi.AuthenticateResponse{}, fault.Unavailable.WithMessage("authn.email_otp has no SMTP server configured")
	}
	var st state
	if len(req.State) > 0 && json.Unmarshal(req.State, &st) != nil {
		st = state{}
	}
	now := a.now()
	code := strings.TrimSpace(first(req.Params[codeParam]))
	resend := first(req.Params[resendParam]) != ""

	if st.CodeHash == "" || resend {
		if !st.SentAt.IsZero() && now.Sub(st.SentAt) < time.Duration(a.ResendSeconds)*time.Second {
			return a.challenge(st, "Wait a moment before asking for another code.")
		}
		return a.sendCode(ctx, req, now)
	}
	if code == "" {
		return a.challenge(st, "")
	}
	if now.After(st.Expires) {
		st.CodeHash = ""
		return a.challenge(st, "That code has expired. Send the form again to get a new one.")
	}
	if subtle.ConstantTimeCompare([]byte(hashCode(req.FlowID, code)), []byte(st.CodeHash)) == 1 {
		return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: req.KnownSubject, AMR: []string{AMR, "mfa"}}, nil
	}
	st.Attempts++
	if st.Attempts >= a.MaxAttempts {
		return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: abi.ReasonInvalidCredentials}, nil
	}
	return a.challenge(st, "That code is not valid.")
}

// sendCode makes a new code, emails it and asks for it.
func (a *Authenticator) sendCode(ctx context.Context, req abi.AuthenticateRequest, now time.Time) (abi.AuthenticateResponse, error) {
	t, err := a.users.GetTenantByName(ctx, req.Tenant)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Unavailable.WithCause(fmt.Errorf("loading tenant: %w", err))
	}
	u, err := a.users.GetUser(ctx, t.ID, req.KnownSubject)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Unavailable.WithCause(fmt.Errorf("loading user: %w", err))
	}
	if u.Email == "" {
		return abi.AuthenticateResponse{}, fault.PreconditionFailed.WithMessage("the account has no email address to send a code to")
	}
	code, err := randomDigits(a.CodeLength)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	msg, err := a.message(u.Email, code, language(req.Headers["accept-language"]))
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	if err := a.send(ctx, msg); err != nil {
		return abi.AuthenticateResponse{}, fault.Unavailable.WithMessage("the code could not be sent").WithCause(err)
	}
	st := state{V: stateV, CodeHash: hashCode(req.FlowID, code), Expires: now.Add(time.Duration(a.TTLSeconds) * time.Second), SentAt: now}
	resp, err := a.challenge(st, "")
	if err == nil {
		resp.Challenge.Message = "We sent a code to " + mask(u.Email) + ". Enter it below."
	}
	return resp, err
}

func (a *Authenticator) challenge(st state, errMsg string) (abi.AuthenticateResponse, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		State:   raw,
		Challenge: &abi.Challenge{
			Kind:    abi.ChallengeForm,
			Message: "Enter the code we emailed you.",
			Error:   errMsg,
			Fields:  []abi.Field{{Name: codeParam, Type: abi.FieldOTP, Label: "Code", Required: true}},
		},
	}, nil
}

// message builds the email in lang ("en" or "de").
func (a *Authenticator) message(to, code, lang string) (*mail.Msg, error) {
	data := map[string]any{"Issuer": a.Issuer, "Code": code, "Minutes": a.TTLSeconds / 60}
	var text, html bytes.Buffer
	if err := a.text[lang].Execute(&text, data); err != nil {
		return nil, err
	}
	if err := a.html[lang].Execute(&html, data); err != nil {
		return nil, err
	}
	m := mail.NewMsg()
	if err := m.From(a.From); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	subject := "Your sign-in code for " + a.Issuer
	if lang == "de" {
		subject = "Ihr Anmeldecode für " + a.Issuer
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, text.String())
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	return m, nil
}

// smtpSend delivers m through the configured server.
func (a *Authenticator) smtpSend(ctx context.Context, m *mail.Msg) error {
	host, portText, err := net.SplitHostPort(a.SMTPAddr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(10 * time.Second)}
	switch a.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if a.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(a.Username), mail.WithPassword(a.password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, m)
}

// hashCode binds a code to its login flow.
func hashCode(flowID, code string) string {
	sum := sha256.Sum256([]byte("latch/email-otp/" + flowID + "/" + code))
	return hex.EncodeToString(sum[:])
}

func randomDigits(n int) (string, error) {
	var b strings.Builder
	for range n {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", err
		}
		b.WriteByte("0123456789"[d.Int64()])
	}
	return b.String(), nil
}

// mask shows enough of an address to recognise it: a***@example.com.
func mask(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "your email address"
	}
	return local[:1] + "***@" + domain
}

// language picks the email's language from Accept-Language values.
func language(accept []string) string {
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
			switch {
			case strings.HasPrefix(tag, "de"):
				return "de"
			case strings.HasPrefix(tag, "en"):
				return "en"
			}
		}
	}
	return "en"
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
