// Package webauthn is the authn.webauthn extension: Web Authentication
// (W3C WebAuthn Level 3) with passkeys and security keys, through
// go-webauthn. One instance serves three uses, decided by the step it runs
// in:
//
//   - passwordless: in a step before the user is known it asks the browser
//     for any discoverable credential (a passkey) of this relying party,
//     and the credential's user handle names the user;
//   - second factor: once an earlier step established the user it asks
//     for one of that user's credentials;
//   - enrolment: when that user has none (and enrol is on), it registers
//     one instead, as authn.totp enrols a secret.
//
// The relying party id and origin come from the node's public URL unless
// configured; attestation conveyance, an AAGUID allow-list, user
// verification and the resident-key requirement are configuration.
// Credentials (public keys, counters, transports, AAGUID, backup flags)
// live in the kernel store's webauthn_credentials table; administrators
// list and revoke them through kernel/authn.CredentialManager.
//
// The challenge it returns is abi.ChallengeWebAuthn whose Data is
// {"mode": "create"|"get", "publicKey": options}: the login page runs
// navigator.credentials.create or .get and posts the credential back as
// JSON in the form field "credential" (or "webauthn_error" when the
// browser refused).
package webauthn

import (
	"cmp"
	"context"
	_ "embed" // the configuration schema
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "authn.webauthn"

// Dependencies the instance takes from extension.Env.Dep.
const (
	// DepStore is the kernel store (Store).
	DepStore = "store"
	// DepPublicURL is the node's public URL (a string), from which the
	// relying party id and origin are derived.
	DepPublicURL = "public_url"
)

// AMR values (RFC 8176): proof of possession of a hardware-secured key,
// and multiple factors (a second step, or a user-verifying authenticator).
const (
	AMR    = "hwk"
	AMRMFA = "mfa"
)

// Form parameters the login page posts back.
const (
	// ParamCredential carries the PublicKeyCredential as JSON (the
	// WebAuthn Level 3 toJSON form).
	ParamCredential = "credential"
	// ParamError carries the name of the DOMException the browser raised
	// ("NotAllowedError" when the user cancelled).
	ParamError = "webauthn_error"
	// ParamNickname optionally names a credential being registered.
	ParamNickname = "nickname"
)

// Ceremony modes in the challenge's data.
const (
	ModeCreate = "create"
	ModeGet    = "get"
)

const (
	stateV         = 1
	maxCredential  = 16 << 10
	defaultTimeout = 300
)

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.webauthn module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "WebAuthn passkeys and security keys: passwordless login or a second factor, with registration during login.",
	}
}

// Store is what the instance needs of the kernel store.
type Store interface {
	GetTenantByName(ctx context.Context, name string) (store.Tenant, error)
	GetUser(ctx context.Context, tenantID, id string) (store.User, error)
	store.WebAuthnCredentials
}

// Authenticator is an authn.webauthn instance; its exported fields are its
// configuration.
type Authenticator struct {
	RPID             string   `json:"rp_id,omitempty"`
	RPName           string   `json:"rp_name,omitempty"`
	Origins          []string `json:"origins,omitempty"`
	Attestation      string   `json:"attestation,omitempty"`
	AllowedAAGUIDs   []string `json:"allowed_aaguids,omitempty"`
	UserVerification string   `json:"user_verification,omitempty"`
	ResidentKey      string   `json:"resident_key,omitempty"`
	Enrol            *bool    `json:"enrol,omitempty"`
	TimeoutSeconds   int      `json:"timeout_seconds,omitempty"`
	MaxAttempts      int      `json:"max_attempts,omitempty"`

	name    string
	store   Store
	wa      *gowebauthn.WebAuthn
	aaguids map[uuid.UUID]bool
	now     func() time.Time
}

// Provision reads the store and the public URL, fills in defaults and
// builds the relying party.
func (a *Authenticator) Provision(_ context.Context, env extension.Env) error {
	a.name = cmp.Or(env.Name, string(ID))
	a.now = time.Now
	a.RPName = cmp.Or(a.RPName, "Latch")
	a.Attestation = cmp.Or(a.Attestation, "none")
	a.UserVerification = cmp.Or(a.UserVerification, string(protocol.VerificationPreferred))
	a.ResidentKey = cmp.Or(a.ResidentKey, string(protocol.ResidentKeyRequirementPreferred))
	a.TimeoutSeconds = cmp.Or(a.TimeoutSeconds, defaultTimeout)
	a.MaxAttempts = cmp.Or(a.MaxAttempts, 5)
	if a.Enrol == nil {
		on := true
		a.Enrol = &on
	}
	d, _ := env.Dep(DepStore)
	st, ok := d.(Store)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want the kernel store", ID, DepStore, d)
	}
	a.store = st
	if a.RPID == "" || len(a.Origins) == 0 {
		p, _ := env.Dep(DepPublicURL)
		public, _ := p.(string)
		u, err := url.Parse(public)
		if public == "" || err != nil || u.Host == "" {
			return fmt.Errorf("provisioning %s: rp_id and origins are not set and the public URL %q does not give them", ID, public)
		}
		if a.RPID == "" {
			a.RPID = u.Hostname()
			if net.ParseIP(a.RPID) != nil {
				return fmt.Errorf("provisioning %s: public_url %q has an IP address, which WebAuthn refuses as a relying party id: set public_url to a host name (localhost for a local test) or set rp_id", ID, public)
			}
		}
		if len(a.Origins) == 0 {
			a.Origins = []string{u.Scheme + "://" + u.Host}
		}
	}
	return a.build()
}

// build checks the configuration and makes the relying party.
func (a *Authenticator) build() error {
	var conveyance protocol.ConveyancePreference
	switch a.Attestation {
	case "none":
		conveyance = protocol.PreferNoAttestation
	case "indirect":
		conveyance = protocol.PreferIndirectAttestation
	case "direct":
		conveyance = protocol.PreferDirectAttestation
	default:
		return fmt.Errorf("attestation: %q is not none, indirect or direct", a.Attestation)
	}
	switch protocol.UserVerificationRequirement(a.UserVerification) {
	case protocol.VerificationRequired, protocol.VerificationPreferred, protocol.VerificationDiscouraged:
	default:
		return fmt.Errorf("user_verification: %q is not required, preferred or discouraged", a.UserVerification)
	}
	switch protocol.ResidentKeyRequirement(a.ResidentKey) {
	case protocol.ResidentKeyRequirementRequired, protocol.ResidentKeyRequirementPreferred, protocol.ResidentKeyRequirementDiscouraged:
	default:
		return fmt.Errorf("resident_key: %q is not required, preferred or discouraged", a.ResidentKey)
	}
	if a.TimeoutSeconds < 30 || a.TimeoutSeconds > 900 {
		return fmt.Errorf("timeout_seconds: %d is outside 30..900", a.TimeoutSeconds)
	}
	for i, o := range a.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("origins[%d]: %q is not an http(s) origin", i, o)
		}
		a.Origins[i] = u.Scheme + "://" + u.Host
	}
	if len(a.AllowedAAGUIDs) > 0 {
		a.aaguids = make(map[uuid.UUID]bool, len(a.AllowedAAGUIDs))
		for i, s := range a.AllowedAAGUIDs {
			id, err := uuid.Parse(s)
			if err != nil {
				return fmt.Errorf("allowed_aaguids[%d]: %q is not a UUID", i, s)
			}
			a.aaguids[id] = true
		}
	}
	rk := protocol.ResidentKeyRequirement(a.ResidentKey)
	timeout := time.Duration(a.TimeoutSeconds) * time.Second
	wa, err := gowebauthn.New(&gowebauthn.Config{
		RPID:                  a.RPID,
		RPDisplayName:         a.RPName,
		RPOrigins:             a.Origins,
		AttestationPreference: conveyance,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        rk,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.UserVerificationRequirement(a.UserVerification),
		},
		Timeouts: gowebauthn.TimeoutsConfig{
			Login:        gowebauthn.TimeoutConfig{Enforce: true, Timeout: timeout, TimeoutUVD: timeout},
			Registration: gowebauthn.TimeoutConfig{Enforce: true, Timeout: timeout, TimeoutUVD: timeout},
		},
	})
	if err != nil {
		return fmt.Errorf("rp_id %q, origins %v: %w", a.RPID, a.Origins, err)
	}
	if rk != protocol.ResidentKeyRequirementRequired {
		wa.Config.AuthenticatorSelection.RequireResidentKey = protocol.ResidentKeyNotRequired()
	}
	a.wa = wa
	return nil
}

// state is what the step keeps between its requests (the kernel keeps it
// server-side).
type state struct {
	V        int                     `json:"v"`
	Mode     string                  `json:"mode,omitempty"`
	Subject  string                  `json:"subject,omitempty"`
	Session  *gowebauthn.SessionData `json:"session,omitempty"`
	Failures int                     `json:"failures,omitempty"`
}

// Authenticate runs the step.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	tid, err := a.tenantID(ctx, req.Tenant)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	var st state
	if len(req.State) > 0 {
		if json.Unmarshal(req.State, &st) != nil || st.V != stateV || st.Subject != req.KnownSubject {
			st = state{}
		}
	}
	cred := first(req.Params[ParamCredential])
	browserErr := first(req.Params[ParamError])
	if st.Session == nil || (cred == "" && browserErr == "") {
		return a.begin(ctx, req, tid, state{V: stateV, Failures: st.Failures}, "")
	}
	if cred == "" || len(cred) > maxCredential {
		return a.retry(ctx, req, tid, st, "The browser did not complete the passkey request. Try again, or choose another way to sign in.")
	}
	if st.Mode == ModeCreate {
		return a.finishRegistration(ctx, req, tid, st, cred)
	}
	return a.finishLogin(ctx, req, tid, st, cred)
}

// begin starts a ceremony: registration for a known user without
// credentials, an assertion for a known user, or a discoverable assertion.
func (a *Authenticator) begin(ctx context.Context, req abi.AuthenticateRequest, tid string, st state, errMsg string) (abi.AuthenticateResponse, error) {
	st.Subject = req.KnownSubject
	var (
		options any
		session *gowebauthn.SessionData
		message string
		err     error
	)
	switch req.KnownSubject {
	case "":
		st.Mode = ModeGet
		var assertion *protocol.CredentialAssertion
		assertion, session, err = a.wa.BeginDiscoverableLogin(gowebauthn.WithUserVerification(protocol.VerificationRequired))
		options, message = assertion, "Sign in with a passkey saved on this device, on your phone or on a security key."
	default:
		user, found, uerr := a.loadUser(ctx, tid, req.KnownSubject)
		if uerr != nil {
			return abi.AuthenticateResponse{}, uerr
		}
		if !found {
			return refused(abi.ReasonInvalidCredentials), nil
		}
		if len(user.creds) > 0 {
			st.Mode = ModeGet
			var assertion *protocol.CredentialAssertion
			assertion, session, err = a.wa.BeginLogin(user, gowebauthn.WithUserVerification(protocol.UserVerificationRequirement(a.UserVerification)))
			options, message = assertion, "Confirm it is you with your passkey or security key."
			break
		}
		if !*a.Enrol {
			return refused(abi.ReasonInvalidCredentials), nil
		}
		st.Mode = ModeCreate
		var creation *protocol.CredentialCreation
		creation, session, err = a.wa.BeginRegistration(user,
			gowebauthn.WithExtensions(gowebauthn.WithExtensionCredProps()),
			gowebauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirement(a.ResidentKey)))
		options, message = creation, "Create a passkey for this account: your device will ask you to confirm with your fingerprint, face, PIN or security key."
	}
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("starting a webauthn ceremony: %w", err))
	}
	st.Session = session
	data, err := json.Marshal(struct {
		Mode    string `json:"mode"`
		Options any    `json:"options"`
	}{st.Mode, options})
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		State:   raw,
		Challenge: &abi.Challenge{
			Kind:    abi.ChallengeWebAuthn,
			Data:    data,
			Message: message,
			Error:   errMsg,
		},
	}, nil
}

// retry counts a failed ceremony and starts another, or refuses once the
// attempts are spent.
func (a *Authenticator) retry(ctx context.Context, req abi.AuthenticateRequest, tid string, st state, msg string) (abi.AuthenticateResponse, error) {
	st.Failures++
	if st.Failures >= a.MaxAttempts {
		return refused(abi.ReasonInvalidCredentials), nil
	}
	return a.begin(ctx, req, tid, state{V: stateV, Failures: st.Failures}, msg)
}

func (a *Authenticator) finishRegistration(ctx context.Context, req abi.AuthenticateRequest, tid string, st state, cred string) (abi.AuthenticateResponse, error) {
	if req.KnownSubject == "" {
		return a.begin(ctx, req, tid, state{V: stateV}, "")
	}
	user, found, err := a.loadUser(ctx, tid, req.KnownSubject)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	if !found {
		return refused(abi.ReasonInvalidCredentials), nil
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(cred))
	if err != nil {
		return a.retry(ctx, req, tid, st, "The passkey could not be read. Try again.")
	}
	c, err := a.wa.CreateCredential(user, *st.Session, parsed)
	if err != nil {
		return a.retry(ctx, req, tid, st, "The passkey could not be registered. Try again.")
	}
	aaguid, _ := uuid.FromBytes(c.Authenticator.AAGUID)
	if a.aaguids != nil && !a.aaguids[aaguid] {
		return a.retry(ctx, req, tid, st, "This kind of security key is not allowed here. Use another one.")
	}
	transports := make([]string, 0, len(c.Transport))
	for _, t := range c.Transport {
		transports = append(transports, string(t))
	}
	if len(transports) == 0 {
		transports = nil
	}
	nickname := strings.TrimSpace(first(req.Params[ParamNickname]))
	if nickname == "" {
		nickname = "Passkey " + a.now().UTC().Format("2006-01-02")
	}
	discoverable := a.ResidentKey == string(protocol.ResidentKeyRequirementRequired) || (c.Extensions.RK != nil && *c.Extensions.RK)
	_, err = a.store.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{
		TenantID: tid, UserID: req.KnownSubject, ID: base64.RawURLEncoding.EncodeToString(c.ID), Authenticator: a.name,
		PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		AAGUID: aaguid.String(), SignCount: c.Authenticator.SignCount, Transports: transports,
		Attachment: string(c.Authenticator.Attachment), UserVerified: c.Flags.UserVerified,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState, Discoverable: discoverable,
		Nickname: truncateRunes(nickname, 64), CreatedAt: a.now(),
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return a.retry(ctx, req, tid, st, "This passkey is registered already.")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return refused(abi.ReasonInvalidCredentials), nil
	case err != nil:
		return abi.AuthenticateResponse{}, fault.Unavailable.WithCause(fmt.Errorf("saving webauthn credential: %w", err))
	}
	return authenticated(req.KnownSubject, true), nil
}

func (a *Authenticator) finishLogin(ctx context.Context, req abi.AuthenticateRequest, tid string, st state, cred string) (abi.AuthenticateResponse, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(cred))
	if err != nil {
		return a.retry(ctx, req, tid, st, "The passkey response could not be read. Try again.")
	}
	var (
		c       *gowebauthn.Credential
		owner   *user
		lookErr error
	)
	if req.KnownSubject != "" {
		u, found, err := a.loadUser(ctx, tid, req.KnownSubject)
		if err != nil {
			return abi.AuthenticateResponse{}, err
		}
		if !found {
			return refused(abi.ReasonInvalidCredentials), nil
		}
		owner = u
		c, err = a.wa.ValidateLogin(u, *st.Session, parsed)
		if err != nil {
			return a.retry(ctx, req, tid, st, "That passkey could not be verified. Try again.")
		}
	} else {
		c, err = a.wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (gowebauthn.User, error) {
			rec, err := a.store.GetWebAuthnCredential(ctx, tid, base64.RawURLEncoding.EncodeToString(rawID))
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					lookErr = err
				}
				return nil, errors.New("unknown credential")
			}
			if rec.UserID != string(userHandle) {
				return nil, errors.New("user handle does not own the credential")
			}
			u, found, err := a.loadUser(ctx, tid, rec.UserID)
			if err != nil || !found {
				lookErr = err
				return nil, errors.New("unknown user")
			}
			owner = u
			return u, nil
		}, *st.Session, parsed)
		if lookErr != nil {
			return abi.AuthenticateResponse{}, fault.Unavailable.WithCause(fmt.Errorf("looking up a webauthn credential: %w", lookErr))
		}
		if err != nil {
			return a.retry(ctx, req, tid, st, "That passkey is not known here, or could not be verified.")
		}
	}
	if !owner.enabled {
		return refused(abi.ReasonDisabled), nil
	}
	id := base64.RawURLEncoding.EncodeToString(c.ID)
	use := store.WebAuthnUse{SignCount: c.Authenticator.SignCount, CloneWarning: c.Authenticator.CloneWarning, BackupState: c.Flags.BackupState, UsedAt: a.now()}
	if err := a.store.UseWebAuthnCredential(ctx, tid, id, use); err != nil && !errors.Is(err, store.ErrNotFound) {
		return abi.AuthenticateResponse{}, fault.Unavailable.WithCause(fmt.Errorf("recording webauthn credential use: %w", err))
	}
	if c.Authenticator.CloneWarning {
		// The signature counter went backwards: two copies of the key
		// exist. The credential is flagged for the administrator.
		return refused(abi.ReasonInvalidCredentials), nil
	}
	uv := parsed.Response.AuthenticatorData.Flags.HasUserVerified()
	return authenticated(owner.subject, req.KnownSubject != "" || uv), nil
}

// tenantID resolves the tenant's name.
func (a *Authenticator) tenantID(ctx context.Context, name string) (string, error) {
	t, err := a.store.GetTenantByName(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", fault.InvalidRequest.WithMessage("unknown tenant")
		}
		return "", fault.Unavailable.WithCause(fmt.Errorf("loading tenant %q: %w", name, err))
	}
	return t.ID, nil
}

// user is a user as go-webauthn sees one: the user handle is the subject.
type user struct {
	subject, name, display string
	enabled                bool
	creds                  []gowebauthn.Credential
}

func (u *user) WebAuthnID() []byte                           { return []byte(u.subject) }
func (u *user) WebAuthnName() string                         { return u.name }
func (u *user) WebAuthnDisplayName() string                  { return u.display }
func (u *user) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

// loadUser reads a user and its credentials; found is false for a user
// the kernel store does not hold.
func (a *Authenticator) loadUser(ctx context.Context, tid, subject string) (*user, bool, error) {
	su, err := a.store.GetUser(ctx, tid, subject)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return nil, false, nil
	case err != nil:
		return nil, false, fault.Unavailable.WithCause(fmt.Errorf("loading user: %w", err))
	}
	recs, err := a.store.ListWebAuthnCredentials(ctx, tid, subject)
	if err != nil {
		return nil, false, fault.Unavailable.WithCause(fmt.Errorf("listing webauthn credentials: %w", err))
	}
	u := &user{subject: subject, name: su.Username, display: cmp.Or(su.DisplayName, su.Username), enabled: su.Enabled}
	for _, r := range recs {
		if c, ok := credential(r); ok {
			u.creds = append(u.creds, c)
		}
	}
	return u, true, nil
}

// credential turns a stored record into go-webauthn's form.
func credential(r store.WebAuthnCredential) (gowebauthn.Credential, bool) {
	id, err := base64.RawURLEncoding.DecodeString(r.ID)
	if err != nil {
		return gowebauthn.Credential{}, false
	}
	var aaguid []byte
	if u, err := uuid.Parse(r.AAGUID); err == nil {
		aaguid = u[:]
	}
	ts := make([]protocol.AuthenticatorTransport, 0, len(r.Transports))
	for _, t := range r.Transports {
		ts = append(ts, protocol.AuthenticatorTransport(t))
	}
	return gowebauthn.Credential{
		ID: id, PublicKey: r.PublicKey, AttestationType: r.AttestationType, AttestationFormat: r.AttestationFormat,
		Transport: ts,
		Flags:     gowebauthn.CredentialFlags{UserPresent: true, UserVerified: r.UserVerified, BackupEligible: r.BackupEligible, BackupState: r.BackupState},
		Authenticator: gowebauthn.Authenticator{
			AAGUID: aaguid, SignCount: r.SignCount, CloneWarning: r.CloneWarning,
			Attachment: protocol.AuthenticatorAttachment(r.Attachment),
		},
	}, true
}

// Enrolled reports whether the user has a credential; it implements
// authn.Enrolment.
func (a *Authenticator) Enrolled(ctx context.Context, tenant, subject string) (bool, error) {
	tid, err := a.tenantID(ctx, tenant)
	if err != nil {
		return false, err
	}
	cs, err := a.store.ListWebAuthnCredentials(ctx, tid, subject)
	if err != nil {
		return false, fault.Unavailable.WithCause(fmt.Errorf("listing webauthn credentials: %w", err))
	}
	return len(cs) > 0, nil
}

// ListCredentials lists a user's passkeys and security keys; it
// implements authn.CredentialManager.
func (a *Authenticator) ListCredentials(ctx context.Context, tenant, subject string) ([]authn.Credential, error) {
	tid, err := a.tenantID(ctx, tenant)
	if err != nil {
		return nil, err
	}
	cs, err := a.store.ListWebAuthnCredentials(ctx, tid, subject)
	if err != nil {
		return nil, fault.Unavailable.WithCause(fmt.Errorf("listing webauthn credentials: %w", err))
	}
	out := make([]authn.Credential, 0, len(cs))
	for _, c := range cs {
		if c.Authenticator != a.name {
			continue
		}
		out = append(out, authn.Credential{
			ID: c.ID, Authenticator: a.name, Type: "webauthn", Nickname: c.Nickname,
			CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt,
			Details: map[string]any{
				"aaguid": c.AAGUID, "sign_count": c.SignCount, "clone_warning": c.CloneWarning,
				"transports": c.Transports, "attachment": c.Attachment, "discoverable": c.Discoverable,
				"user_verified": c.UserVerified, "backup_eligible": c.BackupEligible, "backup_state": c.BackupState,
				"attestation_format": c.AttestationFormat,
			},
		})
	}
	return out, nil
}

// DeleteCredential revokes one of a user's credentials; it implements
// authn.CredentialManager.
func (a *Authenticator) DeleteCredential(ctx context.Context, tenant, subject, id string) error {
	tid, err := a.tenantID(ctx, tenant)
	if err != nil {
		return err
	}
	c, err := a.store.GetWebAuthnCredential(ctx, tid, id)
	if err != nil {
		return fmt.Errorf("deleting webauthn credential: %w", err)
	}
	if c.Authenticator != a.name || c.UserID != subject {
		return fmt.Errorf("deleting webauthn credential: %w", store.ErrNotFound)
	}
	if err := a.store.DeleteWebAuthnCredential(ctx, tid, subject, id); err != nil {
		return fmt.Errorf("deleting webauthn credential: %w", err)
	}
	return nil
}

func authenticated(subject string, mfa bool) abi.AuthenticateResponse {
	amr := []string{AMR}
	if mfa {
		amr = append(amr, AMRMFA)
	}
	return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: subject, AMR: amr}
}

func refused(reason string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeNotAuthenticated, Reason: reason}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Interface guards.
var (
	_ authn.Authenticator     = (*Authenticator)(nil)
	_ authn.Enrolment         = (*Authenticator)(nil)
	_ authn.CredentialManager = (*Authenticator)(nil)
	_ extension.Provisioner   = (*Authenticator)(nil)
)
