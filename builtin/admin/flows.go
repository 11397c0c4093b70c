package admin

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/latchid/latch/builtin/adaptive"
	"github.com/latchid/latch/builtin/login"
	"github.com/latchid/latch/kernel/event"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/store"
)

// Authentication flows (docs/apply.md, docs/adaptive-scripts.md): named,
// versioned login flows that applications refer to with
// settings.authentication = {"flow": "<name>"}. Every save adds a version;
// a roll back saves a copy of an older version as the newest.

// Flow audit actions.
const (
	actionFlowSave     event.Action = "flow.save"
	actionFlowRollback event.Action = "flow.rollback"
	actionFlowDelete   event.Action = "flow.delete"
)

// maxFlowSteps bounds a flow's steps.
const maxFlowSteps = 16

// flowNamePattern is what a flow name may be: it appears in paths and in
// applications' settings.
var flowNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// flowStepJSON is one step of a flow.
type flowStepJSON struct {
	// Options name the authenticators the step offers (instance names,
	// authenticator ids such as "password" and "totp", or WSO2 names).
	Options []string `json:"options"`
	// SubjectStep marks the step whose user is the login's subject, and
	// AttributeStep the one whose attributes are released (scripts).
	SubjectStep   bool `json:"subject_step,omitempty"`
	AttributeStep bool `json:"attribute_step,omitempty"`
}

// flowJSON is one version of a flow.
type flowJSON struct {
	Name    string         `json:"name"`
	Version int64          `json:"version"`
	Steps   []flowStepJSON `json:"steps"`
	// Script is the optional adaptive script (builtin/adaptive).
	Script    string    `json:"script,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// flowInput creates a flow or saves a new version of one.
type flowInput struct {
	// Name is required on POST /flows and must match the path on PUT.
	Name    string         `json:"name,omitempty"`
	Steps   []flowStepJSON `json:"steps"`
	Script  string         `json:"script,omitempty"`
	Comment string         `json:"comment,omitempty"`
}

// rollbackInput names the version a roll back copies.
type rollbackInput struct {
	Version int64 `json:"version"`
}

// flowDefinition is the stored form of steps and script: the shape of an
// application's inline settings.authentication.
func flowDefinition(steps []flowStepJSON, script string) map[string]any {
	ss := make([]any, len(steps))
	for i, st := range steps {
		m := map[string]any{"options": anyList(st.Options)}
		if st.SubjectStep {
			m["subject_step"] = true
		}
		if st.AttributeStep {
			m["attribute_step"] = true
		}
		ss[i] = m
	}
	def := map[string]any{"steps": ss}
	if script != "" {
		def["script"] = script
	}
	return def
}

func anyList(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func toFlowJSON(f store.Flow) flowJSON {
	out := flowJSON{Name: f.Name, Version: f.Version, Comment: f.Comment, CreatedAt: f.CreatedAt.UTC(),
		Steps: []flowStepJSON{}, Script: login.FlowScript(f.Definition)}
	steps, _ := f.Definition["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		st := flowStepJSON{Options: []string{}}
		opts, _ := m["options"].([]any)
		for _, o := range opts {
			if s, ok := o.(string); ok {
				st.Options = append(st.Options, s)
			}
		}
		st.SubjectStep, _ = m["subject_step"].(bool)
		st.AttributeStep, _ = m["attribute_step"].(bool)
		out.Steps = append(out.Steps, st)
	}
	return out
}

func checkFlowName(field, name string) error {
	if !flowNamePattern.MatchString(name) {
		return invalid(field, "must be 1 to 63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

// scriptCompiler is the part of the script engine that checks a script.
type scriptCompiler interface {
	Compile(name, source string) (*adaptive.Script, error)
}

// checkFlow validates a flow the way an application's inline flow is
// validated, and further: every option names an authenticator the tenant
// enables, and the script compiles.
func (a *API) checkFlow(ctx context.Context, tenant, name string, in flowInput) (map[string]any, error) {
	if len(in.Steps) == 0 {
		return nil, invalid("steps", "a flow needs at least one step")
	}
	if len(in.Steps) > maxFlowSteps {
		return nil, invalid("steps", "must have at most %d steps", maxFlowSteps)
	}
	for i, st := range in.Steps {
		field := "steps[" + strconv.Itoa(i) + "].options"
		if len(st.Options) == 0 {
			return nil, invalid(field, "step %d offers no authenticator", i+1)
		}
		if err := checkList(field, st.Options, checkName); err != nil {
			return nil, err
		}
	}
	if err := checkText("comment", in.Comment, maxTextLen); err != nil {
		return nil, err
	}
	def := flowDefinition(in.Steps, in.Script)
	if err := login.CheckFlowDefinition(def); err != nil {
		return nil, invalid("steps", "%v", err)
	}
	if a.d.Extensions != nil {
		if err := login.CheckFlowOptions(def, a.d.Extensions.Enabled(tenant, extension.KindAuthenticator)); err != nil {
			return nil, invalid("steps", "%v", err)
		}
	}
	if in.Script != "" {
		sc, ok := a.d.Adaptive.(scriptCompiler)
		if !ok {
			return nil, fault.Unsupported.WithMessage("this server has no adaptive script engine to run the flow's script")
		}
		if _, err := sc.Compile(name, in.Script); err != nil {
			msg := err.Error()
			var f *fault.Error
			if errors.As(err, &f) {
				msg = f.Message
			}
			return nil, invalid("script", "%s", msg)
		}
	}
	return def, nil
}

func (a *API) listFlows(c *fiber.Ctx) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	fs, next, err := a.d.Store.ListFlows(c.UserContext(), tenantOf(c).ID, p)
	if err != nil {
		return storeError("flow", err)
	}
	out := make([]flowJSON, len(fs))
	for i, f := range fs {
		out[i] = toFlowJSON(f)
	}
	return c.JSON(newList(out, next))
}

// createFlow stores version 1 of a new flow.
func (a *API) createFlow(c *fiber.Ctx) error {
	var in flowInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if err := checkFlowName("name", in.Name); err != nil {
		return err
	}
	t := tenantOf(c)
	_, err := a.d.Store.GetFlow(c.UserContext(), t.ID, in.Name, 0)
	switch {
	case err == nil:
		return fault.New(fault.CodeConflict, "flow "+strconv.Quote(in.Name)+" already exists; PUT /flows/"+in.Name+" saves a new version").WithField("name")
	case !errors.Is(err, store.ErrNotFound):
		return storeError("flow", err)
	}
	return a.saveFlow(c, in.Name, in)
}

// putFlow saves a new version of a flow, creating the flow when missing.
func (a *API) putFlow(c *fiber.Ctx) error {
	var in flowInput
	if err := decode(c, &in); err != nil {
		return err
	}
	name := c.Params("name")
	if err := checkFlowName("name", name); err != nil {
		return err
	}
	if in.Name != "" && in.Name != name {
		return invalid("name", "does not match the path")
	}
	return a.saveFlow(c, name, in)
}

func (a *API) saveFlow(c *fiber.Ctx, name string, in flowInput) error {
	t := tenantOf(c)
	def, err := a.checkFlow(c.UserContext(), t.Name, name, in)
	if err != nil {
		return err
	}
	f, err := a.d.Store.PutFlow(c.UserContext(), store.Flow{TenantID: t.ID, Name: name, Definition: def, Comment: in.Comment})
	if err != nil {
		return storeError("flow", err)
	}
	a.audit(c, t.ID, actionFlowSave, "flow:"+name, store.OutcomeSuccess, map[string]any{"version": f.Version})
	status := fiber.StatusOK
	if f.Version == 1 {
		status = fiber.StatusCreated
		loc := c.Path()
		if c.Method() == fiber.MethodPost {
			loc += "/" + name
		}
		c.Location(loc)
	}
	return c.Status(status).JSON(toFlowJSON(f))
}

func (a *API) getFlow(c *fiber.Ctx) error {
	f, err := a.d.Store.GetFlow(c.UserContext(), tenantOf(c).ID, c.Params("name"), 0)
	if err != nil {
		return storeError("flow", err)
	}
	return c.JSON(toFlowJSON(f))
}

func (a *API) listFlowVersions(c *fiber.Ctx) error {
	fs, err := a.d.Store.ListFlowVersions(c.UserContext(), tenantOf(c).ID, c.Params("name"))
	if err != nil {
		return storeError("flow", err)
	}
	out := make([]flowJSON, len(fs))
	for i, f := range fs {
		out[i] = toFlowJSON(f)
	}
	return c.JSON(newList(out, ""))
}

// flowVersion reads the :version path parameter.
func flowVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, invalid("version", "must be a whole number from 1")
	}
	return v, nil
}

func (a *API) getFlowVersion(c *fiber.Ctx) error {
	v, err := flowVersion(c.Params("version"))
	if err != nil {
		return err
	}
	f, err := a.d.Store.GetFlow(c.UserContext(), tenantOf(c).ID, c.Params("name"), v)
	if err != nil {
		return storeError("flow version", err)
	}
	return c.JSON(toFlowJSON(f))
}

// rollbackFlow saves a copy of an older version as the newest version, so
// that the history keeps both the change and its roll back.
func (a *API) rollbackFlow(c *fiber.Ctx) error {
	var in rollbackInput
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Version < 1 {
		return invalid("version", "must be a whole number from 1")
	}
	t := tenantOf(c)
	name := c.Params("name")
	old, err := a.d.Store.GetFlow(c.UserContext(), t.ID, name, in.Version)
	if err != nil {
		return storeError("flow version", err)
	}
	f, err := a.d.Store.PutFlow(c.UserContext(), store.Flow{TenantID: t.ID, Name: name, Definition: old.Definition,
		Comment: "rolled back to version " + strconv.FormatInt(old.Version, 10)})
	if err != nil {
		return storeError("flow", err)
	}
	a.audit(c, t.ID, actionFlowRollback, "flow:"+name, store.OutcomeSuccess, map[string]any{"version": f.Version, "from": old.Version})
	return c.JSON(toFlowJSON(f))
}

// deleteFlow removes every version of a flow no application refers to.
func (a *API) deleteFlow(c *fiber.Ctx) error {
	t := tenantOf(c)
	name := c.Params("name")
	ctx := c.UserContext()
	if _, err := a.d.Store.GetFlow(ctx, t.ID, name, 0); err != nil {
		return storeError("flow", err)
	}
	after := ""
	for {
		cs, next, err := a.d.Store.ListClients(ctx, t.ID, store.Page{Limit: store.MaxPageLimit, After: after})
		if err != nil {
			return storeError("client", err)
		}
		for _, cl := range cs {
			if ref, _ := cl.Settings[login.ClientSettingAuthentication].(map[string]any); ref != nil && ref["flow"] == name {
				return fault.New(fault.CodeConflict, "flow "+strconv.Quote(name)+" is used by client "+strconv.Quote(cl.ClientID))
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if err := a.d.Store.DeleteFlow(ctx, t.ID, name); err != nil {
		return storeError("flow", err)
	}
	a.audit(c, t.ID, actionFlowDelete, "flow:"+name, store.OutcomeSuccess, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// checkFlowReference refuses a client whose settings.authentication names
// a stored flow the tenant does not have.
func (a *API) checkFlowReference(ctx context.Context, cl store.Client) error {
	ref, _ := cl.Settings[login.ClientSettingAuthentication].(map[string]any)
	name, _ := ref["flow"].(string)
	if name == "" {
		return nil
	}
	_, err := a.d.Store.GetFlow(ctx, cl.TenantID, name, 0)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return invalid("settings."+login.ClientSettingAuthentication+".flow", "flow %q does not exist in this tenant", name)
	case err != nil:
		return storeError("flow", err)
	}
	return nil
}
