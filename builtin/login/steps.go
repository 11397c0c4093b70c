package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/store"
)

// ClientSettingAuthentication is the key in store.Client.Settings of an
// application's login flow:
//
//	{"steps": [{"options": ["password"]}, {"options": ["totp"]}],
//	 "script": "var onLoginRequest = function (context) { … };"}
//
// Steps are numbered from 1 in order; each offers one or more
// authenticators, named by instance name or by authenticator id
// ("password" finds the instance "authn.password"; the WSO2 names scripts
// use, such as "BasicAuthenticator", are accepted too). Without a script
// the steps run in order; with one, the script decides (see
// builtin/adaptive). Without the setting a login is one step offering
// every authenticator the tenant enables.
const ClientSettingAuthentication = "authentication"

// maxScriptSize bounds an application's adaptive script.
const maxScriptSize = 64 << 10

// flowConfig is an application's parsed login flow.
type flowConfig struct {
	Steps  []stepConfig `json:"steps"`
	Script string       `json:"script,omitempty"`
	// Flow names a stored flow to run instead (flowref.go); it stands
	// alone.
	Flow string `json:"flow,omitempty"`
}

type stepConfig struct {
	Options []string `json:"options"`
	// SubjectStep and AttributeStep mark the step whose user is the
	// login's subject and whose attributes are released (scripts only).
	SubjectStep   bool `json:"subject_step,omitempty"`
	AttributeStep bool `json:"attribute_step,omitempty"`
}

// parseFlowConfig reads ClientSettingAuthentication.
func parseFlowConfig(v any) (*flowConfig, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ClientSettingAuthentication, err)
	}
	var fc flowConfig
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ClientSettingAuthentication, err)
	}
	if len(fc.Script) > maxScriptSize {
		return nil, fmt.Errorf("reading %s: the script is larger than %d bytes", ClientSettingAuthentication, maxScriptSize)
	}
	for i, st := range fc.Steps {
		if len(st.Options) == 0 {
			return nil, fmt.Errorf("reading %s: step %d offers no authenticator", ClientSettingAuthentication, i+1)
		}
	}
	if len(fc.Steps) == 0 && fc.Script != "" {
		return nil, fmt.Errorf("reading %s: a script needs steps to execute", ClientSettingAuthentication)
	}
	if err := checkFlowRef(&fc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ClientSettingAuthentication, err)
	}
	return &fc, nil
}

// CheckFlowConfig reports whether v is a valid ClientSettingAuthentication
// value (its script is compiled when the first login uses it).
func CheckFlowConfig(v any) error {
	_, err := parseFlowConfig(v)
	return err
}

// scripts caches compiled scripts by the hash of their source.
type scripts struct {
	mu sync.Mutex
	m  map[string]*adaptive.Script
}

func (s *Service) compiled(fc *flowConfig, client string) (*adaptive.Script, error) {
	if s.d.Engine == nil {
		return nil, errors.New("an adaptive script is configured but no script engine is available")
	}
	sum := sha256.Sum256([]byte(fc.Script))
	key := hex.EncodeToString(sum[:])
	s.scripts.mu.Lock()
	defer s.scripts.mu.Unlock()
	if sc, ok := s.scripts.m[key]; ok {
		return sc, nil
	}
	sc, err := s.d.Engine.Compile(client, fc.Script)
	if err != nil {
		return nil, err
	}
	if len(s.scripts.m) >= 1024 {
		clear(s.scripts.m)
	}
	s.scripts.m[key] = sc
	return sc, nil
}

// flowConfigFor returns the login flow of the flow's application: its own,
// or the default one step offering every enabled authenticator.
func (s *Service) flowConfigFor(ctx context.Context, t Tenant, f *flow) (*flowConfig, string, error) {
	name := f.Client
	if f.Client != "" {
		cl, err := s.d.Store.GetClientByClientID(ctx, t.ID, f.Client)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, "", fmt.Errorf("loading application: %w", err)
		default:
			if cl.Name != "" {
				name = cl.Name
			}
			fc, err := parseFlowConfig(cl.Settings[ClientSettingAuthentication])
			if err == nil && fc != nil && fc.Flow != "" {
				fc, err = s.storedFlow(ctx, t.ID, fc.Flow)
			}
			if err != nil {
				return nil, "", err
			}
			if fc != nil {
				return fc, name, nil
			}
		}
	}
	var all []string
	for _, i := range s.options(t) {
		if r, ok := extension.As[authn.SubjectRequirer](i); ok && r.RequiresKnownSubject() {
			continue // a second factor cannot start a login
		}
		all = append(all, i.Name())
	}
	return &flowConfig{Steps: []stepConfig{{Options: all}}}, name, nil
}

// resolveOption finds the authenticator instance an option names: its
// instance name, or an authenticator id whose module is "authn.<id>".
func resolveOption(opts []*extension.Instance, name string) *extension.Instance {
	id := adaptive.AuthenticatorID(name)
	for _, i := range opts {
		if i.Name() == name || i.Name() == id || i.Name() == "authn."+id || string(i.ID()) == "authn."+id {
			return i
		}
	}
	return nil
}

// optionIDP is the identity provider name of an instance in a step's
// options: its instance name when another instance of the same module
// answers to its authenticator id (two federated identity providers), as
// WSO2 names an identity provider; "" otherwise.
func optionIDP(opts []*extension.Instance, inst *extension.Instance) string {
	if resolveOption(opts, authenticatorID(inst)) != inst {
		return inst.Name()
	}
	return ""
}

// authenticatorID names an instance the way scripts do: "authn.password"
// is "password".
func authenticatorID(i *extension.Instance) string {
	return strings.TrimPrefix(string(i.ID()), "authn.")
}

// decide works out what the login does next, after the flow's History:
// the script's decision when the application has a script, else the next
// configured step, else completion.
func (s *Service) decide(c *fiber.Ctx, t Tenant, f *flow) (adaptive.Decision, error) {
	ctx := c.UserContext()
	fc, appName, err := s.flowConfigFor(ctx, t, f)
	if err != nil {
		return adaptive.Decision{}, err
	}
	if fc.Script == "" {
		done := 0
		for _, e := range f.History {
			if e.Kind == adaptive.EntryStep && e.Success {
				done = max(done, e.Step)
			}
		}
		if done < len(fc.Steps) {
			n := done + 1
			return adaptive.Decision{Kind: adaptive.DecisionExecuteStep, Step: &adaptive.StepDecision{Number: n, Options: s.authOptions(t, fc.Steps[n-1].Options)}}, nil
		}
		return adaptive.Decision{Kind: adaptive.DecisionComplete, AttributeSubject: attributeSubject(f.History, fc.Steps)}, nil
	}
	sc, err := s.compiled(fc, appName)
	if err != nil {
		return adaptive.Decision{}, err
	}
	steps := make([]adaptive.StepConfig, len(fc.Steps))
	for i, st := range fc.Steps {
		steps[i] = adaptive.StepConfig{Number: i + 1, Options: s.authOptions(t, st.Options),
			SubjectStep: st.SubjectStep, AttributeStep: st.AttributeStep}
	}
	in := adaptive.Input{
		FlowID: f.ID, Time: f.CreatedAt, TenantDomain: t.Name, ServiceProvider: appName,
		Steps: steps, Request: f.Request, History: f.History,
		RequestedACRs: strings.Fields(f.ACRValues),
	}
	return s.d.Engine.Evaluate(ctx, sc, in)
}

// authOptions names a step's options the way scripts and the History do:
// by the authenticator id of the instance each resolves to ("password"
// for an option "BasicAuthenticator" or "authn.password").
func (s *Service) authOptions(t Tenant, names []string) []adaptive.AuthOption {
	opts := s.options(t)
	out := make([]adaptive.AuthOption, 0, len(names))
	for _, n := range names {
		id := adaptive.AuthenticatorID(n)
		if inst := resolveOption(opts, n); inst != nil {
			id = authenticatorID(inst)
			if idp := optionIDP(opts, inst); idp != "" {
				out = append(out, adaptive.AuthOption{Authenticator: id, IDP: idp})
				continue
			}
		}
		out = append(out, adaptive.AuthOption{Authenticator: id})
	}
	return out
}

// advance asks what comes next and does it: shows the next step (by a
// redirect to the flow's page), completes the login, or ends it with an
// error.
func (s *Service) advance(c *fiber.Ctx, t Tenant, pg Page, f *flow, replace bool) error {
	ctx := c.UserContext()
	dec, err := s.decide(c, t, f)
	if err != nil {
		var se *adaptive.ScriptError
		if errors.As(err, &se) {
			s.publish(c, t.ID, "anonymous", ActionLogin, event.OutcomeError, map[string]any{"reason": "adaptive script failed", "client_id": f.Client})
		}
		return s.fail(c, pg, fmt.Errorf("deciding the next login step: %w", err))
	}
	f.History = append(f.History, dec.Record...)
	s.applyEffects(c, t, dec.Effects)
	if dec.SelectedACR != "" {
		f.SelectedACR = dec.SelectedACR
	}
	switch dec.Kind {
	case adaptive.DecisionExecuteStep:
		opts := s.options(t)
		var names []string
		for _, o := range dec.Step.Options {
			name := o.Authenticator
			if o.IDP != "" {
				name = o.IDP // an identity provider is named by its instance
			}
			if name == "" {
				continue
			}
			if inst := resolveOption(opts, name); inst != nil && !slices.Contains(names, inst.Name()) {
				names = append(names, inst.Name())
			}
		}
		if len(names) == 0 {
			return s.fail(c, pg, fmt.Errorf("step %d offers no authenticator this tenant enables", dec.Step.Number))
		}
		f.Step, f.Offered, f.Authenticator, f.State, f.Prompt = dec.Step.Number, names, "", nil, nil
		f.Authenticator = s.routeStep(ctx, t, f, names)
		f.ScriptParams = stepParams(dec.Step.AuthenticatorParams)
	case adaptive.DecisionPrompt:
		f.Prompt = dec.Prompt
	case adaptive.DecisionComplete:
		f.Attributes = releasedAttributes(dec.AttributeSubject)
		if dec.Subject != nil && dec.Subject.ID != "" {
			f.Subject = dec.Subject.ID
			if dec.Subject.Username != "" {
				f.Username = dec.Subject.Username
			}
		}
		if f.Subject == "" || (f.Claimed != "" && !f.Proven) {
			// A flow that only names the user (identifier-first alone)
			// proves nothing: a clear refusal, not a server error.
			s.d.Log.WarnContext(ctx, "login flow ended without a step that proves the user", "tenant", t.Name, "client_id", f.Client)
			s.publish(c, t.ID, "anonymous", ActionLogin, event.OutcomeDenied, map[string]any{"reason": "incomplete_flow", "client_id": f.Client})
			return s.RenderError(c, http.StatusForbidden, pg, "login.incomplete", "")
		}
		return s.complete(c, t, pg, f)
	case adaptive.DecisionFail, adaptive.DecisionSendError:
		detail := map[string]any{"client_id": f.Client, "decision": string(dec.Kind)}
		msg := ""
		if dec.Error != nil {
			detail["error"] = dec.Error.Code
			msg = dec.Error.Message
			if key := dec.Error.Params["i18nkey"]; key != "" && hasText(key) {
				msg = text(pickLanguage(pg.UILocales, c.Get(fiber.HeaderAcceptLanguage)), key)
			}
		}
		s.publish(c, t.ID, event.Ref("user", f.Subject), ActionLogin, event.OutcomeDenied, detail)
		if err := s.d.Store.DeleteToken(ctx, t.ID, kindFlow, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.d.Log.WarnContext(ctx, "deleting refused login flow", "err", err)
		}
		return s.RenderError(c, http.StatusForbidden, pg, "login.refused", msg)
	default:
		return s.fail(c, pg, fmt.Errorf("unknown decision %q", dec.Kind))
	}
	if err := s.saveFlow(ctx, t.ID, f, replace); err != nil {
		return s.fail(c, pg, err)
	}
	return c.Redirect(s.publicURL+t.Base+PathLogin+"?flow="+url.QueryEscape(f.ID), http.StatusSeeOther)
}

// stepParams flattens a script's authenticatorParams for an authenticator
// request: the "common" values, then the "local" ones of any authenticator
// (the step's authenticator reads those it knows).
func stepParams(p map[string]any) map[string]string {
	if len(p) == 0 {
		return nil
	}
	out := map[string]string{}
	add := func(v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				out[k] = fmt.Sprint(x)
			}
		}
	}
	add(p["common"])
	if local, ok := p["local"].(map[string]any); ok {
		for _, v := range local {
			add(v)
		}
	}
	return out
}

// applyEffects carries out what a script asked for, once. Effects on
// other parts of the system (roles, claims, sessions) go through the
// store; an effect that fails is logged, and does not stop the login.
func (s *Service) applyEffects(c *fiber.Ctx, t Tenant, effects []adaptive.Effect) {
	ctx := c.UserContext()
	for _, e := range effects {
		var err error
		switch e.Kind {
		case adaptive.EffectSetCookie:
			if ck := e.Cookie; ck != nil {
				c.Cookie(&fiber.Cookie{Name: ck.Name, Value: ck.Value, MaxAge: ck.MaxAge, Path: orDefault(ck.Path, "/"),
					HTTPOnly: true, Secure: s.secure, SameSite: fiber.CookieSameSiteLaxMode})
			}
		case adaptive.EffectResponseHeader:
			c.Set(e.Name, e.Value)
		case adaptive.EffectAssignRoles, adaptive.EffectRemoveRoles:
			err = s.changeRoles(ctx, t, e)
		case adaptive.EffectSetLocalClaim:
			err = s.setClaim(ctx, t, e)
		case adaptive.EffectTerminateSession:
			err = s.d.Store.DeleteSession(ctx, t.ID, e.SessionID)
			if errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		default:
			err = fmt.Errorf("effect %q is not available in this build", e.Kind)
		}
		if err != nil {
			s.d.Log.WarnContext(ctx, "applying an adaptive script effect", "effect", string(e.Kind), "err", err)
		}
	}
}

func (s *Service) changeRoles(ctx context.Context, t Tenant, e adaptive.Effect) error {
	for _, name := range e.Roles {
		r, err := s.d.Store.GetRoleByName(ctx, t.ID, name)
		if err != nil {
			return fmt.Errorf("role %q: %w", name, err)
		}
		if e.Kind == adaptive.EffectAssignRoles {
			err = s.d.Store.AssignRole(ctx, t.ID, r.ID, "user", e.UserID)
			if errors.Is(err, store.ErrConflict) {
				err = nil
			}
		} else {
			err = s.d.Store.UnassignRole(ctx, t.ID, r.ID, "user", e.UserID)
			if errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("role %q: %w", name, err)
		}
	}
	return nil
}

func (s *Service) setClaim(ctx context.Context, t Tenant, e adaptive.Effect) error {
	u, err := s.d.Store.GetUser(ctx, t.ID, e.UserID)
	if err != nil {
		return err
	}
	if u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	u.Attributes[e.Claim] = e.Value
	_, err = s.d.Store.UpdateUser(ctx, u)
	return err
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
