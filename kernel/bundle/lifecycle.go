package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/latchid/latch/kernel/store"
)

// Bundle states in the store.
const (
	StateEnabled  = "enabled"
	StateDisabled = "disabled"
	StatePrevious = "previous"
)

// Lifecycle errors, matched with errors.Is. Errors of Read, Verify and
// ParseManifest keep their own sentinels.
var (
	// ErrNotGranted: the bundle asks for capabilities the request does not
	// grant.
	ErrNotGranted = errors.New("capability not granted")
	// ErrInvalidConfig: the configuration does not match the schema.
	ErrInvalidConfig = errors.New("invalid bundle configuration")
	// ErrNotInstalled: no version of the bundle is installed (or none to
	// roll back to).
	ErrNotInstalled = errors.New("bundle not installed")
	// ErrConflict: the operation does not fit the installed versions
	// (installing over an installed bundle, upgrading to the installed
	// version).
	ErrConflict = errors.New("bundle conflict")
	// ErrRefused: the server's trial load refused the bundle.
	ErrRefused = errors.New("bundle refused by the host")
)

// Record is what an installation keeps beside the archive, stored as JSON
// in store.Bundle.Manifest: the parsed manifest and the operator's
// decisions.
type Record struct {
	Manifest Manifest `json:"manifest"`
	// Grants are the capabilities the operator granted.
	Grants []string `json:"grants"`
	// Config is the configuration of the bundle's instances.
	Config json.RawMessage `json:"config,omitempty"`
	// Tenants, when set, are the only tenants that use the bundle's
	// extensions; empty means every tenant.
	Tenants []string `json:"tenants,omitempty"`
	// Signer is the KeyID of the signer ("" when installed unsigned).
	Signer string `json:"signer,omitempty"`
}

// DecodeRecord decodes store.Bundle.Manifest.
func DecodeRecord(raw []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Record{}, fmt.Errorf("decoding the bundle record: %w", err)
	}
	return r, nil
}

// Checker loads a verified bundle on trial (its module, with the grants
// and configuration) and reports why it cannot run; nil to skip.
type Checker func(ctx context.Context, b *Bundle, rec Record) error

// Manager runs the bundle lifecycle over the store. Every operation checks
// everything before it writes, so a refused one changes nothing.
type Manager struct {
	Store store.Bundles
	Trust Trust
	Check Checker
}

// Request is an install or upgrade.
type Request struct {
	Archive []byte
	// Grants: for an upgrade, nil keeps the installed version's grants.
	Grants []string
	// Config: for an upgrade, nil keeps the installed version's.
	Config json.RawMessage
	// Tenants: for an upgrade, nil keeps the installed version's.
	Tenants []string
}

// Version is one stored version, for listings.
type Version struct {
	Name    string
	Version string
	State   string
	Digest  string
	Record  Record
	Stored  store.Bundle
}

// Versions lists the stored versions of every bundle, by name then install
// time.
func (m *Manager) Versions(ctx context.Context) ([]Version, error) {
	bs, err := m.Store.ListBundles(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing bundles: %w", err)
	}
	out := make([]Version, 0, len(bs))
	for _, b := range bs {
		rec, err := DecodeRecord(b.Manifest)
		if err != nil {
			return nil, fmt.Errorf("bundle %s %s: %w", b.Name, b.Version, err)
		}
		out = append(out, Version{Name: b.Name, Version: b.Version, State: b.State, Digest: b.Digest, Record: rec, Stored: b})
	}
	return out, nil
}

// versionsOf returns the active version (enabled or disabled, the latest
// installed if several) and the previous ones of name.
func (m *Manager) versionsOf(ctx context.Context, name string) (active *Version, previous []Version, err error) {
	all, err := m.Versions(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i := range all {
		v := all[i]
		if v.Name != name {
			continue
		}
		if v.State == StatePrevious {
			previous = append(previous, v)
		} else {
			active = &v
		}
	}
	return active, previous, nil
}

// prepare opens, verifies and checks a request against an installed
// version (nil for an install).
func (m *Manager) prepare(ctx context.Context, req Request, installed *Version) (*Bundle, Record, error) {
	b, signer, err := m.Trust.Open(req.Archive)
	if err != nil {
		return nil, Record{}, err
	}
	rec := Record{Manifest: b.Manifest, Grants: req.Grants, Config: req.Config, Tenants: req.Tenants, Signer: signer}
	if installed != nil {
		if rec.Grants == nil {
			rec.Grants = installed.Record.Grants
		}
		if rec.Config == nil {
			rec.Config = installed.Record.Config
		}
		if rec.Tenants == nil {
			rec.Tenants = installed.Record.Tenants
		}
	}
	if missing := b.Manifest.Missing(rec.Grants); len(missing) > 0 {
		what := "installing"
		if installed != nil {
			what = "upgrading to"
		}
		hosts := ""
		if h := b.Manifest.Hosts(); len(h) > 0 {
			hosts = fmt.Sprintf(", http to %v", h)
		}
		return nil, Record{}, fmt.Errorf("%w: %s bundle %s %s needs capabilities %v granted (it asks for %v%s); pass them in grants",
			ErrNotGranted, what, b.Manifest.Name, b.Manifest.Version, missing, b.Manifest.CapabilityNames(), hosts)
	}
	if len(bytes.TrimSpace(rec.Config)) > 0 && !json.Valid(rec.Config) {
		return nil, Record{}, fmt.Errorf("%w: config is not JSON", ErrInvalidConfig)
	}
	if err := b.Manifest.ValidateConfig(rec.Config); err != nil {
		return nil, Record{}, fmt.Errorf("%w: bundle %s %s: %w", ErrInvalidConfig, b.Manifest.Name, b.Manifest.Version, err)
	}
	if m.Check != nil {
		if err := m.Check(ctx, b, rec); err != nil {
			return nil, Record{}, fmt.Errorf("%w: bundle %s %s: %w", ErrRefused, b.Manifest.Name, b.Manifest.Version, err)
		}
	}
	return b, rec, nil
}

func (m *Manager) put(ctx context.Context, b *Bundle, rec Record, archive []byte, state string) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the bundle record: %w", err)
	}
	err = m.Store.PutBundle(ctx, store.Bundle{
		Name: b.Manifest.Name, Version: b.Manifest.Version, ABIVersion: b.Manifest.ABIVersion,
		Digest: b.Digest(), Manifest: raw, Archive: archive, State: state,
	})
	if err != nil {
		return fmt.Errorf("storing bundle %s %s: %w", b.Manifest.Name, b.Manifest.Version, err)
	}
	return nil
}

// Install installs a bundle that is not installed yet, enabled.
func (m *Manager) Install(ctx context.Context, req Request) (Record, error) {
	b, err := Read(req.Archive)
	if err != nil {
		return Record{}, err
	}
	active, previous, err := m.versionsOf(ctx, b.Manifest.Name)
	if err != nil {
		return Record{}, err
	}
	if active != nil || len(previous) > 0 {
		return Record{}, fmt.Errorf("%w: bundle %s is installed already; upgrade it or remove it first", ErrConflict, b.Manifest.Name)
	}
	b, rec, err := m.prepare(ctx, req, nil)
	if err != nil {
		return Record{}, err
	}
	return rec, m.put(ctx, b, rec, req.Archive, StateEnabled)
}

// Upgrade replaces the active version of an installed bundle with another
// version, keeping it as the one to roll back to; older versions are
// deleted. An upgrade that asks for capabilities the installed version was
// not granted needs them in req.Grants.
func (m *Manager) Upgrade(ctx context.Context, req Request) (Record, error) {
	b, err := Read(req.Archive)
	if err != nil {
		return Record{}, err
	}
	name := b.Manifest.Name
	active, previous, err := m.versionsOf(ctx, name)
	if err != nil {
		return Record{}, err
	}
	if active == nil {
		return Record{}, fmt.Errorf("%w: bundle %s has no active version to upgrade; install it", ErrNotInstalled, name)
	}
	if active.Version == b.Manifest.Version {
		return Record{}, fmt.Errorf("%w: bundle %s %s is the installed version", ErrConflict, name, active.Version)
	}
	b, rec, err := m.prepare(ctx, req, active)
	if err != nil {
		return Record{}, err
	}
	// The new version first, then the old one steps back: a reader between
	// the two sees two active versions and takes the latest installed.
	if err := m.put(ctx, b, rec, req.Archive, active.State); err != nil {
		return Record{}, err
	}
	if err := m.Store.SetBundleState(ctx, name, active.Version, StatePrevious); err != nil {
		return Record{}, fmt.Errorf("keeping bundle %s %s for roll back: %w", name, active.Version, err)
	}
	for _, p := range previous {
		if p.Version == b.Manifest.Version {
			continue
		}
		if err := m.Store.DeleteBundle(ctx, name, p.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
			return Record{}, fmt.Errorf("deleting bundle %s %s: %w", name, p.Version, err)
		}
	}
	return rec, nil
}

// Rollback makes the previous version active again (in the active
// version's state) and keeps the active one as previous.
func (m *Manager) Rollback(ctx context.Context, name string) (Version, error) {
	active, previous, err := m.versionsOf(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if active == nil || len(previous) == 0 {
		return Version{}, fmt.Errorf("%w: bundle %s has no previous version to roll back to", ErrNotInstalled, name)
	}
	to := previous[len(previous)-1]
	if err := m.Store.SetBundleState(ctx, name, to.Version, active.State); err != nil {
		return Version{}, fmt.Errorf("rolling bundle %s back to %s: %w", name, to.Version, err)
	}
	if err := m.Store.SetBundleState(ctx, name, active.Version, StatePrevious); err != nil {
		return Version{}, fmt.Errorf("rolling bundle %s back from %s: %w", name, active.Version, err)
	}
	to.State = active.State
	return to, nil
}

// SetEnabled enables or disables the active version.
func (m *Manager) SetEnabled(ctx context.Context, name string, enabled bool) (Version, error) {
	active, _, err := m.versionsOf(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if active == nil {
		return Version{}, fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	state := StateDisabled
	if enabled {
		state = StateEnabled
	}
	if err := m.Store.SetBundleState(ctx, name, active.Version, state); err != nil {
		return Version{}, fmt.Errorf("setting bundle %s to %s: %w", name, state, err)
	}
	active.State = state
	return *active, nil
}

// Configure changes the active version's configuration and tenants (nil
// keeps them); the configuration is checked against the schema first.
func (m *Manager) Configure(ctx context.Context, name string, config json.RawMessage, tenants []string) (Version, error) {
	active, _, err := m.versionsOf(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if active == nil {
		return Version{}, fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	full, err := m.Store.GetBundle(ctx, name, active.Version)
	if err != nil {
		return Version{}, fmt.Errorf("reading bundle %s %s: %w", name, active.Version, err)
	}
	grants := active.Record.Grants
	if grants == nil {
		grants = []string{}
	}
	b, rec, err := m.prepare(ctx, Request{Archive: full.Archive, Grants: grants, Config: config, Tenants: tenants}, active)
	if err != nil {
		return Version{}, err
	}
	if err := m.put(ctx, b, rec, full.Archive, active.State); err != nil {
		return Version{}, err
	}
	active.Record = rec
	return *active, nil
}

// Remove deletes every version of a bundle.
func (m *Manager) Remove(ctx context.Context, name string) error {
	active, previous, err := m.versionsOf(ctx, name)
	if err != nil {
		return err
	}
	if active == nil && len(previous) == 0 {
		return fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	if active != nil {
		previous = append(previous, *active)
	}
	for _, v := range slices.Backward(previous) {
		if err := m.Store.DeleteBundle(ctx, name, v.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("removing bundle %s %s: %w", name, v.Version, err)
		}
	}
	return nil
}
