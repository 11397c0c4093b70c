// Package totp is the authn.totp extension: time-based one-time passwords
// (RFC 6238, 6 digits, 30 s, SHA-1 as authenticator apps expect) as a
// second factor. It checks the user an earlier step established (the
// request's KnownSubject); it never identifies a user by itself.
//
// A user without a confirmed secret is enrolled on the spot: the step
// shows a QR code (and the base32 secret for manual entry) and ten
// recovery codes, and the first correct code confirms the enrolment. Later
// logins ask for a code; a recovery code is accepted in its place, once.
// A code is accepted once: a replay within its validity is refused.
//
// Secrets are sealed with the master key (kernel/secret) and kept in the
// kernel store's plugin key-value space under the instance's name; the
// pending secret of an enrolment travels in the flow's state, sealed too.
// Recovery codes are stored as SHA-256 hashes (they are random, 50 bits,
// single use).
package totp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed" // the configuration schema
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "authn.totp"

// Dependencies the instance takes from extension.Env.Dep.
const (
	// DepStore is the kernel store (store.PluginKV).
	DepStore = "store"
	// DepBox seals secrets (a Sealer: *secret.Box).
	DepBox = "secret.box"
)

// AMR values (RFC 8176): a one-time password, and multiple factors.
const AMR = "otp"

const (
	period     = 30
	codeParam  = "code"
	stateV     = 1
	recordV    = 1
	maxCodeLen = 32
)

//go:embed config.schema.json
var configSchema []byte

// Module returns the authn.totp module.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindAuthenticator,
		New:          func() any { return new(Authenticator) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Time-based one-time passwords (RFC 6238) as a second factor, with enrolment and recovery codes.",
	}
}

// Sealer seals and opens secrets (kernel/secret.Box).
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Authenticator is an authn.totp instance; its exported fields are its
// configuration.
type Authenticator struct {
	Issuer        string `json:"issuer,omitempty"`
	Skew          *uint  `json:"skew,omitempty"`
	RecoveryCodes *int   `json:"recovery_codes,omitempty"`
	MaxAttempts   int    `json:"max_attempts,omitempty"`

	name string
	kv   store.PluginKV
	box  Sealer
	now  func() time.Time
}

// Provision takes the store and the sealer.
func (a *Authenticator) Provision(ctx context.Context, env extension.Env) error {
	a.Issuer = cmp.Or(a.Issuer, "Latch")
	if a.Skew == nil {
		one := uint(1)
		a.Skew = &one
	}
	if a.RecoveryCodes == nil {
		ten := 10
		a.RecoveryCodes = &ten
	}
	a.MaxAttempts = cmp.Or(a.MaxAttempts, 5)
	a.name = cmp.Or(env.Name, string(ID))
	a.now = time.Now
	d, _ := env.Dep(DepStore)
	kv, ok := d.(store.PluginKV)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want a store.PluginKV", ID, DepStore, d)
	}
	b, _ := env.Dep(DepBox)
	box, ok := b.(Sealer)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want a secret sealer", ID, DepBox, b)
	}
	a.kv, a.box = kv, box
	return nil
}

// RequiresKnownSubject reports that TOTP is a second factor: a login flow
// never offers it in a step before the user is known.
func (a *Authenticator) RequiresKnownSubject() bool { return true }

// record is a user's enrolment, sealed in the store.
type record struct {
	V        int      `json:"v"`
	Secret   string   `json:"secret"`
	Recovery []string `json:"recovery,omitempty"` // SHA-256 hex of unused codes
	// LastStep is the time step of the last accepted code.
	LastStep int64     `json:"last_step"`
	Enrolled time.Time `json:"enrolled"`
}

// state is what the step keeps between its requests, sealed.
type state struct {
	V        int      `json:"v"`
	Pending  string   `json:"pending,omitempty"` // an enrolment's secret
	Recovery []string `json:"recovery,omitempty"`
	Failures int      `json:"failures,omitempty"`
}

// Authenticate runs the step.
func (a *Authenticator) Authenticate(ctx context.Context, req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	if req.KnownSubject == "" {
		return abi.AuthenticateResponse{}, fault.InvalidRequest.WithMessage("authn.totp is a second factor: an earlier step must identify the user")
	}
	st, err := a.openState(req.Tenant, req.KnownSubject, req.State)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	rec, enrolled, err := a.load(ctx, req.Tenant, req.KnownSubject)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	code := strings.ReplaceAll(strings.TrimSpace(first(req.Params[codeParam])), " ", "")
	if len(code) > maxCodeLen {
		code = code[:maxCodeLen]
	}

	if !enrolled {
		if st.Pending == "" {
			return a.startEnrolment(req)
		}
		if code == "" {
			return a.enrolChallenge(req, st, "")
		}
		step, ok := a.check(code, st.Pending, 0)
		if !ok {
			st.Failures++
			if st.Failures >= a.MaxAttempts {
				return refused(abi.ReasonInvalidCredentials), nil
			}
			return a.enrolChallenge(req, st, "That code is not valid. Check the time on your device and try again.")
		}
		rec = record{V: recordV, Secret: st.Pending, Recovery: st.Recovery, LastStep: step, Enrolled: a.now().UTC()}
		if err := a.save(ctx, req.Tenant, req.KnownSubject, rec); err != nil {
			return abi.AuthenticateResponse{}, err
		}
		return authenticated(req.KnownSubject), nil
	}

	if code == "" {
		return a.codeChallenge(req, st, "")
	}
	if step, ok := a.check(code, rec.Secret, rec.LastStep); ok {
		rec.LastStep = step
		if err := a.save(ctx, req.Tenant, req.KnownSubject, rec); err != nil {
			return abi.AuthenticateResponse{}, err
		}
		return authenticated(req.KnownSubject), nil
	}
	if i := matchRecovery(rec.Recovery, code); i >= 0 {
		rec.Recovery = append(rec.Recovery[:i:i], rec.Recovery[i+1:]...)
		if err := a.save(ctx, req.Tenant, req.KnownSubject, rec); err != nil {
			return abi.AuthenticateResponse{}, err
		}
		return authenticated(req.KnownSubject), nil
	}
	st.Failures++
	if st.Failures >= a.MaxAttempts {
		return refused(abi.ReasonInvalidCredentials), nil
	}
	return a.codeChallenge(req, st, "That code is not valid.")
}

// check reports whether code is valid for secret at a time step after
// last, and which step it matched.
func (a *Authenticator) check(code, secret string, last int64) (int64, bool) {
	now := a.now().Unix() / period
	skew := int64(min(*a.Skew, 2)) // the schema caps it at 2
	for d := -skew; d <= skew; d++ {
		step := now + d
		if step <= last {
			continue // used already: no replays
		}
		want, err := otptotp.GenerateCodeCustom(secret, time.Unix(step*period, 0), otptotp.ValidateOpts{
			Period: period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

func (a *Authenticator) startEnrolment(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
	account := req.KnownSubject
	if u := first(req.Params["username"]); u != "" {
		account = u
	}
	key, err := otptotp.Generate(otptotp.GenerateOpts{Issuer: a.Issuer, AccountName: account, Period: period})
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(fmt.Errorf("generating a TOTP secret: %w", err))
	}
	st := state{V: stateV, Pending: key.Secret()}
	codes, hashes, err := recoveryCodes(*a.RecoveryCodes)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	st.Recovery = hashes
	resp, err := a.enrolChallenge(req, st, "")
	if err != nil {
		return resp, err
	}
	if len(codes) > 0 {
		resp.Challenge.Message += " Keep these recovery codes somewhere safe; each works once in place of a code: " + strings.Join(codes, " ")
	}
	return resp, nil
}

// enrolChallenge shows the QR code of the pending secret.
func (a *Authenticator) enrolChallenge(req abi.AuthenticateRequest, st state, errMsg string) (abi.AuthenticateResponse, error) {
	key, err := otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/%s?secret=%s&issuer=%s&period=%d", escape(a.Issuer+":"+req.KnownSubject), st.Pending, escape(a.Issuer), period))
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return abi.AuthenticateResponse{}, fault.Internal.WithCause(err)
	}
	data, _ := json.Marshal(map[string]string{
		"image":     "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		"image_alt": "QR code of your one-time password secret",
		"secret":    st.Pending,
	})
	sealed, err := a.sealState(req.Tenant, req.KnownSubject, st)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		State:   sealed,
		Challenge: &abi.Challenge{
			Kind:    abi.ChallengeForm,
			Message: "Scan the QR code with your authenticator app (or enter the key " + st.Pending + "), then enter the 6-digit code it shows.",
			Error:   errMsg,
			Data:    data,
			Fields:  []abi.Field{{Name: codeParam, Type: abi.FieldOTP, Label: "Code", Required: true}},
		},
	}, nil
}

// codeChallenge asks an enrolled user for a code.
func (a *Authenticator) codeChallenge(req abi.AuthenticateRequest, st state, errMsg string) (abi.AuthenticateResponse, error) {
	sealed, err := a.sealState(req.Tenant, req.KnownSubject, st)
	if err != nil {
		return abi.AuthenticateResponse{}, err
	}
	return abi.AuthenticateResponse{
		Outcome: abi.OutcomeChallenge,
		State:   sealed,
		Challenge: &abi.Challenge{
			Kind:    abi.ChallengeForm,
			Message: "Enter the 6-digit code from your authenticator app, or a recovery code.",
			Error:   errMsg,
			Fields:  []abi.Field{{Name: codeParam, Type: abi.FieldOTP, Label: "Code", Required: true}},
		},
	}, nil
}

func (a *Authenticator) kvKey(subject string) string { return "user/" + subject }

// aad binds sealed values to the instance, tenant and user, so one user's
// secret cannot be moved to another.
func (a *Authenticator) aad(kind, tenant, subject string) []byte {
	return []byte("latch/" + a.name + "/" + kind + "/" + tenant + "/" + subject)
}

func (a *Authenticator) load(ctx context.Context, tenant, subject string) (record, bool, error) {
	e, err := a.kv.KVGet(ctx, a.name, tenant, a.kvKey(subject))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return record{}, false, nil
	case err != nil:
		return record{}, false, fault.Unavailable.WithCause(fmt.Errorf("loading TOTP enrolment: %w", err))
	}
	plain, err := a.box.Open(e.Value, a.aad("record", tenant, subject))
	if err != nil {
		return record{}, false, fault.Internal.WithCause(fmt.Errorf("opening TOTP enrolment: %w", err))
	}
	var r record
	if err := json.Unmarshal(plain, &r); err != nil || r.V != recordV || r.Secret == "" {
		return record{}, false, fault.Internal.WithCause(fmt.Errorf("decoding TOTP enrolment: %w", err))
	}
	return r, true, nil
}

func (a *Authenticator) save(ctx context.Context, tenant, subject string, r record) error {
	plain, err := json.Marshal(r) //nolint:gosec // G117: sealed on the next line, never stored or sent in clear.
	if err != nil {
		return fault.Internal.WithCause(err)
	}
	sealed, err := a.box.Seal(plain, a.aad("record", tenant, subject))
	if err != nil {
		return fault.Internal.WithCause(err)
	}
	if err := a.kv.KVPut(ctx, a.name, tenant, store.KVEntry{Key: a.kvKey(subject), Value: sealed}); err != nil {
		return fault.Unavailable.WithCause(fmt.Errorf("saving TOTP enrolment: %w", err))
	}
	return nil
}

func (a *Authenticator) sealState(tenant, subject string, st state) ([]byte, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, fault.Internal.WithCause(err)
	}
	sealed, err := a.box.Seal(plain, a.aad("state", tenant, subject))
	if err != nil {
		return nil, fault.Internal.WithCause(err)
	}
	return sealed, nil
}

func (a *Authenticator) openState(tenant, subject string, sealed []byte) (state, error) {
	if len(sealed) == 0 {
		return state{V: stateV}, nil
	}
	plain, err := a.box.Open(sealed, a.aad("state", tenant, subject))
	if err != nil {
		// Another user's or a tampered state: start over.
		return state{V: stateV}, nil //nolint:nilerr // a bad state restarts the step
	}
	var st state
	if err := json.Unmarshal(plain, &st); err != nil || st.V != stateV {
		return state{V: stateV}, nil //nolint:nilerr // a bad state restarts the step
	}
	return st, nil
}

// recoveryCodes returns n random codes (xxxxx-xxxxx, base32 without
// padding: 50 bits) and their hashes.
func recoveryCodes(n int) ([]string, []string, error) {
	codes, hashes := make([]string, 0, n), make([]string, 0, n)
	for range n {
		b := make([]byte, 7)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fault.Internal.WithCause(err)
		}
		s := strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(b), "="))[:10]
		code := s[:5] + "-" + s[5:]
		codes = append(codes, code)
		hashes = append(hashes, hashCode(code))
	}
	return codes, hashes, nil
}

func hashCode(code string) string {
	sum := sha256.Sum256([]byte("latch/totp-recovery/" + strings.ToLower(strings.ReplaceAll(code, "-", ""))))
	return hex.EncodeToString(sum[:])
}

// matchRecovery returns the index of code among the hashes, or -1.
func matchRecovery(hashes []string, code string) int {
	if len(code) < 10 {
		return -1
	}
	h := hashCode(code)
	found := -1
	for i, x := range hashes {
		if subtle.ConstantTimeCompare([]byte(x), []byte(h)) == 1 {
			found = i
		}
	}
	return found
}

func authenticated(subject string) abi.AuthenticateResponse {
	return abi.AuthenticateResponse{Outcome: abi.OutcomeAuthenticated, Subject: subject, AMR: []string{AMR, "mfa"}}
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

func escape(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", "&", "%26", "?", "%3F", "#", "%23", "/", "%2F").Replace(s)
}
