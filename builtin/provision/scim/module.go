package scim

import (
	"cmp"
	"context"
	_ "embed" // the configuration schema
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/builtin/provision/outbox"
	"github.com/latchid/latch/kernel/extension"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/store"
)

// ID is the module id.
const ID extension.ID = "provision.scim"

// DepStore is the dependency the module needs: the kernel store.Store,
// which holds the outbox and whose audit log feeds it.
const DepStore = "store"

//go:embed config.schema.json
var configSchema []byte

// Module returns the provision.scim module for the builtin table.
func Module() extension.Module {
	return extension.Module{
		ID:           ID,
		Kind:         extension.KindProvisioner,
		New:          func() any { return new(Instance) },
		ConfigSchema: json.RawMessage(configSchema),
		Description:  "Outbound SCIM 2.0: pushes users and groups to another SCIM service, durably, with retries and a dead-letter list.",
	}
}

// Instance is a provision.scim instance. Its exported fields are its
// configuration (see config.schema.json). Once provisioned it collects the
// user and group changes recorded in the audit log of every tenant into
// its outbox and delivers them in the background until it is closed.
type Instance struct {
	URL           string   `json:"url"`
	Token         string   `json:"token,omitempty"`
	TokenURL      string   `json:"token_url,omitempty"`
	ClientID      string   `json:"client_id,omitempty"`
	ClientSecret  string   `json:"client_secret,omitempty"`
	Scopes        []string `json:"scopes,omitempty"`
	TimeoutMillis int64    `json:"timeout_millis,omitempty"`
	AllowPrivate  bool     `json:"allow_private,omitempty"`
	MaxAttempts   int      `json:"max_attempts,omitempty"`
	PollMillis    int64    `json:"poll_millis,omitempty"`
	InitialSync   bool     `json:"initial_sync,omitempty"`
	// Rules decide which users and groups reach the target; none: all.
	Rules *outbox.Rules `json:"rules,omitempty"`

	p *Provisioner
	o *Outbox
	r *outbox.Runner
}

// Provision implements extension.Provisioner: it builds the client and the
// outbox and starts delivering.
func (in *Instance) Provision(ctx context.Context, env extension.Env) error {
	d, _ := env.Dep(DepStore)
	st, ok := d.(store.Store)
	if !ok {
		return fmt.Errorf("provisioning %s: dependency %q is %T, want a store.Store", ID, DepStore, d)
	}
	var err error
	in.p, err = New(Config{URL: in.URL, Token: in.Token, TokenURL: in.TokenURL, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		Scopes: in.Scopes, Timeout: time.Duration(in.TimeoutMillis) * time.Millisecond, AllowPrivate: in.AllowPrivate}, nil)
	if err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	if d, ok := env.Dep(outbox.DepRules); ok {
		f, ok := d.(outbox.RulesFunc)
		if !ok {
			return fmt.Errorf("provisioning %s: dependency %q is %T, want an outbox.RulesFunc", ID, outbox.DepRules, d)
		}
		if r := f(cmp.Or(env.Name, string(ID))); r != nil {
			if in.Rules != nil {
				return &extension.ConfigError{Fields: []extension.FieldError{{Path: "rules",
					Message: "rules are set both on the instance and in its config; keep one (the instance's rules are the same object)"}}}
			}
			c := *r // this instance compiles its own copy
			in.Rules = &c
		}
	}
	if err := in.Rules.Compile(); err != nil {
		return &extension.ConfigError{Fields: []extension.FieldError{{Path: "config." + strings.SplitN(err.Error(), ":", 2)[0], Message: err.Error()}}}
	}
	ns := Namespace
	if env.Name != "" && env.Name != string(ID) {
		// Every instance keeps its own queue, cursor and id map.
		ns += "/" + env.Name
	}
	poll := time.Duration(in.PollMillis) * time.Millisecond
	in.o = NewOutbox(st, in.p, Options{Namespace: ns, Name: cmp.Or(env.Name, string(ID)), Rules: in.Rules, MaxAttempts: in.MaxAttempts, Poll: poll, Log: env.Logger})
	in.p.resolve = in.o.Resolve
	// The first round runs before the node serves, so that a first start
	// places each tenant's cursor before any change the node accepts.
	if in.r, err = outbox.Start(ctx, outbox.NewCapture(st, in.o, in.InitialSync)); err != nil {
		return fmt.Errorf("provisioning %s: %w", ID, err)
	}
	return nil
}

// Close implements extension.Cleaner: it stops the background delivery.
// Queued changes stay in the store for the next start.
func (in *Instance) Close(ctx context.Context) error {
	if err := in.r.Stop(ctx); err != nil {
		return fmt.Errorf("stopping %s: %w", ID, err)
	}
	return nil
}

// Push implements provision.Provisioner, for callers that deliver events
// themselves.
func (in *Instance) Push(ctx context.Context, ev abi.ProvisionEvent) (abi.ProvisionResponse, error) {
	if in.p == nil {
		return abi.ProvisionResponse{}, errors.New("provision.scim: not provisioned")
	}
	return in.p.Push(ctx, ev)
}

// Outbox returns the instance's outbox (pending changes, dead letters,
// requeue), or nil before Provision.
func (in *Instance) Outbox() *Outbox { return in.o }

// ListPending implements provision.Queue.
func (in *Instance) ListPending(ctx context.Context, tenantID string, p store.Page) ([]Entry, string, error) {
	if in.o == nil {
		return nil, "", errNotProvisioned
	}
	return in.o.ListPending(ctx, tenantID, p)
}

// ListDeadLetters implements provision.Queue.
func (in *Instance) ListDeadLetters(ctx context.Context, tenantID string, p store.Page) ([]Entry, string, error) {
	if in.o == nil {
		return nil, "", errNotProvisioned
	}
	return in.o.ListDeadLetters(ctx, tenantID, p)
}

// Retry implements provision.Queue.
func (in *Instance) Retry(ctx context.Context, tenantID, id string) error {
	if in.o == nil {
		return errNotProvisioned
	}
	return in.o.Retry(ctx, tenantID, id)
}

// RetryAll implements provision.Queue.
func (in *Instance) RetryAll(ctx context.Context, tenantID string) (int, error) {
	if in.o == nil {
		return 0, errNotProvisioned
	}
	return in.o.RetryAll(ctx, tenantID)
}

// Discard implements provision.Queue.
func (in *Instance) Discard(ctx context.Context, tenantID, id string) error {
	if in.o == nil {
		return errNotProvisioned
	}
	return in.o.Discard(ctx, tenantID, id)
}

var errNotProvisioned = errors.New("provision.scim: not provisioned")

var (
	_ extension.Provisioner = (*Instance)(nil)
	_ extension.Cleaner     = (*Instance)(nil)
	_ provision.Queue       = (*Instance)(nil)
)
