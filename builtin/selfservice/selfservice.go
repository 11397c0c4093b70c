// Package selfservice holds the account protection and self-service parts
// of Latch's browser front: the tenant's password policy (length, classes,
// pattern, history, maximum age, an optional breach check), password
// changes under it, the change a login requires when an administrator
// forced a reset or the password expired, self sign-up with email
// verification and consent to purposes, and password recovery by an
// emailed link.
//
// Everything is configured per tenant in the tenant's settings
// (password_policy, self_service); the mail server is the node's (config
// mail.*). See docs/authentication.md, "Account protection and
// self-service".
package selfservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/password"
	"github.com/latchid/latch/kernel/store"
)

// Attributes of store.User this package reads and writes.
const (
	// AttrForceReset, when true, makes the next login set a new password.
	AttrForceReset = "latch.force_password_reset"
	// AttrChangedAt is when the password was last set (RFC 3339).
	AttrChangedAt = "latch.password_changed_at"
	// AttrConsents records the purposes agreed to at sign-up.
	AttrConsents = "latch.consents"
	// AttrPendingSignup marks an account waiting for its email to be
	// verified.
	AttrPendingSignup = "latch.signup_pending"
	// AttrLastLogin is when the account last signed in (RFC 3339).
	AttrLastLogin = "latch.last_login_at"
)

// Tenant settings keys.
const (
	SettingPasswordPolicy = "password_policy"
	SettingSelfService    = "self_service"
)

// Kinds of store.Token this package keeps (keyed by the SHA-256 of the
// token sent by email, never the token).
const (
	kindVerify  = "signup_verify"
	kindRecover = "password_recovery"
)

// Audit actions.
const (
	ActionSignup          event.Action = "user.signup"
	ActionVerified        event.Action = "user.email_verified"
	ActionPasswordChanged event.Action = "user.password_changed"
	ActionRecovery        event.Action = "user.password_recovery"
)

// Store is the part of the kernel store the service uses; store.Store
// implements it.
type Store interface {
	GetTenant(ctx context.Context, id string) (store.Tenant, error)
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	CreateUser(ctx context.Context, u store.User) (store.User, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	GetUserByUsername(ctx context.Context, tenantID, username string) (store.User, error)
	ListUsers(ctx context.Context, tenantID string, q store.UserQuery) ([]store.User, string, error)
	UpdateUser(ctx context.Context, u store.User) (store.User, error)
	DeleteUserSessions(ctx context.Context, tenantID, userID string) (int, error)
	store.Tokens
}

// Hasher hashes and verifies passwords; *password.Hasher implements it.
type Hasher interface {
	Hash(pw string) (string, error)
	Verify(pw, encoded string) (ok, needsRehash bool, err error)
}

// Authenticators gives a tenant's authenticator instances (for the breach
// check); the node's extension set implements it.
type Authenticators interface {
	Enabled(tenant string, kind extension.Kind) []*extension.Instance
}

// Mail is the SMTP server mail goes out through.
type Mail struct {
	// Addr is host:port; empty turns sign-up and recovery mail off.
	Addr string
	// From is the sender address.
	From string
	// Username and Password authenticate (PLAIN) when Username is set.
	Username, Password string
	// TLS is starttls (default), tls or none.
	TLS string
}

// Deps are what the service needs.
type Deps struct {
	Store          Store
	Hasher         Hasher
	Login          *login.Service
	Authenticators Authenticators
	PublicURL      string
	Mail           Mail
	Log            *slog.Logger
	Audit          login.Auditor
	// Captcha, when set, guards the pages the tenant asks it on
	// (self_service.captcha); Widget shows it.
	Captcha Captcha
	Widget  Widget
}

// Service is safe for concurrent use.
type Service struct {
	d    Deps
	page *template.Template
	now  func() time.Time
	// send delivers a message; tests may replace it.
	send func(ctx context.Context, m *mail.Msg) error
	// tokens, when set, revokes a user's OAuth tokens with their
	// sessions (tokens.go).
	tokens TokenRevoker
}

//go:embed templates/page.html
var templateFS embed.FS

// New builds the service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Login == nil {
		return nil, errors.New("creating self-service: Store, Hasher and Login are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	t, err := template.ParseFS(templateFS, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("creating self-service: %w", err)
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	s := &Service{d: d, page: t, now: time.Now}
	s.send = s.smtpSend
	return s, nil
}

// Purpose is a use of personal data a user agrees to at sign-up.
type Purpose struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Required    bool   `json:"required,omitempty"`
}

// Settings is the tenant setting self_service.
type Settings struct {
	// Signup enables /signup.
	Signup bool `json:"signup,omitempty"`
	// Recovery enables /recover.
	Recovery bool `json:"recovery,omitempty"`
	// Purposes are offered at sign-up and recorded as consents.
	Purposes []Purpose `json:"purposes,omitempty"`
	// TokenTTLMinutes is how long an emailed link works. Default 60.
	TokenTTLMinutes int `json:"token_ttl_minutes,omitempty"`
	// IdleLockDays locks, at login, an account unused for that long; 0
	// never.
	IdleLockDays int `json:"idle_lock_days,omitempty"`
	// Questions are the security questions users may answer
	// (questions.go); empty turns recovery by questions off.
	Questions []string `json:"questions,omitempty"`
	// QuestionsAsked is how many answers a user sets at least, and how
	// many a recovery asks. Default 2.
	QuestionsAsked int `json:"questions_asked,omitempty"`
	// Captcha chooses the pages that show the node's CAPTCHA.
	Captcha struct {
		Signup   bool `json:"signup,omitempty"`
		Recovery bool `json:"recovery,omitempty"`
	} `json:"captcha,omitempty"`
}

func decodeSetting(settings map[string]any, key string, into any) error {
	v, ok := settings[key]
	if !ok || v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("tenant setting %s: %w", key, err)
	}
	return nil
}

// CheckSettings validates the tenant settings this package reads; the
// admin API calls it before storing a tenant. A refusal is a
// fault.InvalidRequest on the field of the setting ("settings.password_policy",
// "settings.self_service") saying what is wrong.
func CheckSettings(settings map[string]any) error {
	var p password.Policy
	err := decodeSetting(settings, SettingPasswordPolicy, &p)
	if err == nil {
		err = p.Compile()
	}
	if err != nil {
		return fault.InvalidRequest.WithMessage("settings." + SettingPasswordPolicy + ": " + err.Error()).WithField("settings." + SettingPasswordPolicy).WithCause(err)
	}
	var ss Settings
	if err := decodeSetting(settings, SettingSelfService, &ss); err != nil {
		return fault.InvalidRequest.WithMessage("settings." + SettingSelfService + ": " + err.Error()).WithField("settings." + SettingSelfService).WithCause(err)
	}
	return nil
}

// Policy returns the tenant's password policy. A tenant without one gets
// the zero Policy (any non-empty password up to password.MaxLength).
func (s *Service) Policy(ctx context.Context, tenantID string) (password.Policy, error) {
	t, err := s.d.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return password.Policy{}, fmt.Errorf("loading tenant: %w", err)
	}
	return policyOf(t)
}

// policyOf returns the tenant's password policy. A stored policy that
// does not parse (the admin API refuses one, but an older release or a
// direct database edit may have stored it) refuses every password with a
// fault.InvalidRequest on field "password" that says so, never an
// internal error.
func policyOf(t store.Tenant) (password.Policy, error) {
	var p password.Policy
	err := decodeSetting(t.Settings, SettingPasswordPolicy, &p)
	if err == nil {
		err = p.Compile()
	}
	if err != nil {
		return p, fault.InvalidRequest.WithMessage(ErrInvalidPolicy.Error()).WithField("password").WithCause(fmt.Errorf("%w: %w", ErrInvalidPolicy, err))
	}
	return p, nil
}

// ErrInvalidPolicy is the cause of the refusal of every password in a
// tenant whose stored password_policy is not valid.
var ErrInvalidPolicy = errors.New("the tenant's password policy (settings." + SettingPasswordPolicy + ") is not valid, so no password can be set; an administrator must correct it")

func settingsOf(t store.Tenant) Settings {
	var ss Settings
	_ = decodeSetting(t.Settings, SettingSelfService, &ss)
	if ss.TokenTTLMinutes <= 0 {
		ss.TokenTTLMinutes = 60
	}
	return ss
}

// CheckPassword reports whether pw may become the password of u (the
// zero User, or one not stored yet, for a new account) in the tenant: the
// tenant's policy, its history and its breach check. A refusal is a
// fault.InvalidRequest on field "password" whose message lists every rule
// broken and whose cause is a *password.PolicyError (errors.As). The admin
// API, SCIM and /api/me call it before storing a password.
func (s *Service) CheckPassword(ctx context.Context, tenantID string, u store.User, pw string) error {
	t, err := s.d.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("checking password: loading tenant: %w", err)
	}
	return s.checkPassword(ctx, t, u, pw)
}

// RecordPassword makes hash (of a password CheckPassword accepted) the
// password of u, keeping the history the tenant's policy needs and the
// change time (ApplyPassword). The caller stores u.
func (s *Service) RecordPassword(ctx context.Context, tenantID string, u *store.User, hash string) {
	if t, err := s.d.Store.GetTenant(ctx, tenantID); err == nil {
		if p, err := policyOf(t); err == nil {
			if err := s.remember(ctx, tenantID, p, u.ID, u.PasswordHash); err != nil {
				s.d.Log.WarnContext(ctx, "recording the password history", "err", err)
			}
		}
	}
	ApplyPassword(u, hash, s.now())
}

func (s *Service) checkPassword(ctx context.Context, t store.Tenant, u store.User, pw string) error {
	p, err := policyOf(t)
	if err != nil {
		return err
	}
	perr := p.Check(pw)
	if perr == nil && u.PasswordHash != "" && p.History > 0 {
		old, err := s.history(ctx, t.ID, u.ID)
		if err != nil {
			return err
		}
		perr = p.CheckHistory(s.d.Hasher, pw, append([]string{u.PasswordHash}, old...))
	}
	if perr == nil && p.BreachCheck != "" {
		perr = s.breached(ctx, t, p.BreachCheck, u.ID, pw)
	}
	if perr != nil {
		var pe *password.PolicyError
		if errors.As(perr, &pe) {
			return fault.InvalidRequest.WithMessage(pe.Error()).WithField("password").WithCause(pe)
		}
		return perr
	}
	return nil
}

// breached asks the named authenticator (the breachedpw plugin or one
// alike) about pw: it answers not_authenticated with reason
// password_breached for a breached password.
func (s *Service) breached(ctx context.Context, t store.Tenant, name, subject, pw string) error {
	if s.d.Authenticators == nil {
		return fault.Unavailable.WithMessage("the breach check is not available")
	}
	var inst *extension.Instance
	for _, i := range s.d.Authenticators.Enabled(t.Name, extension.KindAuthenticator) {
		if i.Name() == name {
			inst = i
		}
	}
	if inst == nil {
		return fault.Unavailable.WithCause(fmt.Errorf("breach check %q is not an authenticator tenant %q enables", name, t.Name))
	}
	a, ok := extension.As[authn.Authenticator](inst)
	if !ok {
		return fault.Internal.WithCause(fmt.Errorf("breach check %q is not an authenticator", name))
	}
	if subject == "" {
		subject = "new-account"
	}
	req := abi.AuthenticateRequest{
		Tenant: t.Name, FlowID: "password-policy", Step: 1, KnownSubject: subject,
		Params: map[string][]string{"password": {pw}}, Config: inst.Config(),
	}
	var resp abi.AuthenticateResponse
	err := extension.Call(ctx, inst, abi.OpAuthenticate, func(ctx context.Context) error {
		var err error
		resp, err = authn.Check(a.Authenticate(ctx, req))
		return err
	})
	if err != nil {
		return fault.Unavailable.WithMessage("the breach check could not be run").WithCause(err)
	}
	if resp.Outcome == abi.OutcomeNotAuthenticated && resp.Reason == "password_breached" {
		return &password.PolicyError{Violations: []password.Violation{{Rule: "breached", Message: "This password appears in a list of breached passwords; choose another."}}}
	}
	if resp.Outcome != abi.OutcomeAuthenticated {
		return fault.Unavailable.WithMessage("the breach check refused the password").WithCause(fmt.Errorf("breach check answered %s/%s", resp.Outcome, resp.Reason))
	}
	return nil
}

// ApplyPassword sets u's password to hash: the change time is now and a
// forced reset is cleared. The caller stores u (and, for the history,
// calls RecordPassword instead).
func ApplyPassword(u *store.User, hash string, now time.Time) {
	if u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	u.PasswordHash = hash
	u.Attributes[AttrChangedAt] = now.UTC().Format(time.RFC3339)
	delete(u.Attributes, AttrForceReset)
	delete(u.Attributes, AttrQuestionFailures)
}

// SetPassword checks pw under the tenant's policy and makes it the
// password of the user; with revoke, the user's sessions end and the
// OAuth tokens issued to them are revoked (UseTokens). A refused
// password is a fault.InvalidRequest (see CheckPassword); /api/me and the
// admin API call it.
func (s *Service) SetPassword(ctx context.Context, tenantID, userID, pw string, revoke bool) error {
	t, err := s.d.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("setting password: loading tenant: %w", err)
	}
	for range 3 {
		u, err := s.d.Store.GetUser(ctx, tenantID, userID)
		if err != nil {
			return fmt.Errorf("setting password: %w", err)
		}
		if err := s.checkPassword(ctx, t, u, pw); err != nil {
			return err
		}
		hash, err := s.d.Hasher.Hash(pw)
		if err != nil {
			return fault.InvalidRequest.WithMessage("The password cannot be used.").WithField("password").WithCause(err)
		}
		prev := u.PasswordHash
		ApplyPassword(&u, hash, s.now())
		if _, err := s.d.Store.UpdateUser(ctx, u); errors.Is(err, store.ErrVersionMismatch) {
			continue
		} else if err != nil {
			return fmt.Errorf("setting password: %w", err)
		}
		p, _ := policyOf(t)
		if err := s.remember(ctx, tenantID, p, userID, prev); err != nil {
			return fmt.Errorf("setting password: %w", err)
		}
		if revoke {
			if _, err := s.d.Store.DeleteUserSessions(ctx, tenantID, userID); err != nil {
				return fmt.Errorf("setting password: ending sessions: %w", err)
			}
			if _, err := s.RevokeTokens(ctx, tenantID, userID); err != nil {
				return fmt.Errorf("setting password: %w", err)
			}
		}
		return nil
	}
	return fault.Conflict.WithMessage("the account changed meanwhile; try again")
}

// MustChangePassword reports why the user has to set a new password before
// a login completes: "forced" (an administrator asked), "expired" (older
// than the policy's max_age_days), or "" (no change needed, or an account
// the kernel store does not hold).
func (s *Service) MustChangePassword(ctx context.Context, tenantID, userID string) (string, error) {
	u, err := s.d.Store.GetUser(ctx, tenantID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if b, _ := u.Attributes[AttrForceReset].(bool); b {
		return "forced", nil
	}
	if u.PasswordHash == "" {
		return "", nil
	}
	t, err := s.d.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return "", err
	}
	p, err := policyOf(t)
	if err != nil {
		return "", err
	}
	changed, _ := time.Parse(time.RFC3339, stringAttr(u, AttrChangedAt))
	if changed.IsZero() {
		changed = u.CreatedAt
	}
	if p.Expired(changed, s.now()) {
		return "expired", nil
	}
	return "", nil
}

// CheckIdle refuses (true) a login to an account unused for longer than
// the tenant's idle_lock_days, locking it; otherwise it records the login
// time. Accounts the kernel store does not hold pass.
func (s *Service) CheckIdle(ctx context.Context, tenantID, userID string) (bool, error) {
	t, err := s.d.Store.GetTenant(ctx, tenantID)
	if err != nil {
		return false, err
	}
	ss := settingsOf(t)
	u, err := s.d.Store.GetUser(ctx, tenantID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	now := s.now()
	last, _ := time.Parse(time.RFC3339, stringAttr(u, AttrLastLogin))
	if last.IsZero() {
		last = u.CreatedAt
	}
	if u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	if ss.IdleLockDays > 0 && now.Sub(last) > time.Duration(ss.IdleLockDays)*24*time.Hour {
		u.LockedUntil = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		u.Attributes[AttrLastLogin] = now.UTC().Format(time.RFC3339) // unlocking by an admin starts a new period
		if _, err := s.d.Store.UpdateUser(ctx, u); err != nil {
			return true, err
		}
		return true, nil
	}
	u.Attributes[AttrLastLogin] = now.UTC().Format(time.RFC3339)
	if _, err := s.d.Store.UpdateUser(ctx, u); err != nil && !errors.Is(err, store.ErrVersionMismatch) {
		return false, err
	}
	return false, nil
}

func stringAttr(u store.User, k string) string {
	v, _ := u.Attributes[k].(string)
	return v
}

// tokenKey is the stored key of an emailed token.
func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte("latch/selfservice/" + tok))
	return hex.EncodeToString(sum[:])
}

func (s *Service) smtpSend(ctx context.Context, m *mail.Msg) error {
	host, portText, err := net.SplitHostPort(s.d.Mail.Addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return err
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(10 * time.Second)}
	switch s.d.Mail.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.d.Mail.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.d.Mail.Username), mail.WithPassword(s.d.Mail.Password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, m)
}

// mailLink sends a message with one link.
func (s *Service) mailLink(ctx context.Context, to, subject, intro, link string) error {
	if s.d.Mail.Addr == "" {
		return fault.Unavailable.WithMessage("no mail server is configured (mail.smtp_addr)")
	}
	m := mail.NewMsg()
	if err := m.From(s.d.Mail.From); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := m.To(to); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, intro+"\n\n"+link+"\n")
	var html bytes.Buffer
	if err := template.Must(template.New("m").Parse(`<p>{{.Intro}}</p><p><a href="{{.Link}}">{{.Link}}</a></p>`)).Execute(&html, map[string]string{"Intro": intro, "Link": link}); err != nil {
		return err
	}
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	return s.send(ctx, m)
}
