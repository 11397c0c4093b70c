package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/latchid/latch/kernel/secret"
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
	// ErrNoModule: the bundle has no module this node can run (no
	// WebAssembly module and no native binary for its os/arch).
	ErrNoModule = errors.New("bundle has no module for this platform")
)

// Record is what an installation keeps beside the archive: the parsed
// manifest and the operator's decisions. The decisions are stored in the
// bundle row's own columns (store.BundleInstall); the whole record is also
// kept as JSON in store.Bundle.Manifest, which is where the manifest is
// read from and where an older build reads everything.
type Record struct {
	Manifest Manifest `json:"manifest"`
	// Grants are the capabilities the operator granted.
	Grants []string `json:"grants"`
	// Config is the configuration of the bundle's instances without the
	// values of its secret fields (Manifest.SecretFields).
	Config json.RawMessage `json:"config,omitempty"`
	// Tenants, when set, are the only tenants that use the bundle's
	// extensions; empty means every tenant.
	Tenants []string `json:"tenants,omitempty"`
	// Signer is the KeyID of the signer ("" when installed unsigned).
	Signer string `json:"signer,omitempty"`
	// SecretNames are the secret fields that have a value.
	SecretNames []string `json:"secret_names,omitempty"`
	// PreviousVersion is the version this one replaced.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Sealed is the secret fields' values, sealed (Manager.Secrets opens
	// them); never part of the JSON.
	Sealed []byte `json:"-"`
}

// DecodeRecord decodes the JSON of store.Bundle.Manifest.
func DecodeRecord(raw []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Record{}, fmt.Errorf("decoding the bundle record: %w", err)
	}
	return r, nil
}

// RecordOf reads a stored version's record: the manifest from the JSON,
// the decisions from their columns (or, on a row an older build wrote,
// from the JSON too).
func RecordOf(b store.Bundle) (Record, error) {
	r, err := DecodeRecord(b.Manifest)
	if err != nil {
		return Record{}, err
	}
	if in := b.Install; in != nil {
		r.Grants, r.Tenants, r.Config, r.Signer = in.Grants, in.Tenants, in.Config, in.Signer
		r.Sealed, r.PreviousVersion = in.Secrets, in.PreviousVersion
	}
	if len(r.Sealed) == 0 {
		r.SecretNames = nil
	}
	return r, nil
}

// Checker loads a verified bundle on trial (its module, with the grants
// and configuration) and reports why it cannot run; nil to skip. The
// record it gets carries the full configuration, secret values included:
// it must not store or log it.
type Checker func(ctx context.Context, b *Bundle, rec Record) error

// Manager runs the bundle lifecycle over the store. Every operation checks
// everything before it writes, so a refused one changes nothing.
type Manager struct {
	Store store.Bundles
	Trust Trust
	Check Checker
	// Box seals the secret fields of configurations (NewSecretBox); a
	// configuration with secrets is refused without it.
	Box *secret.Box
	// Platform is the GOOS/GOARCH this node runs ("linux/amd64"); a bundle
	// with neither a WebAssembly module nor a native binary for it is
	// refused. Empty skips the check.
	Platform string
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
		rec, err := RecordOf(b)
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
	if m.Platform != "" && !b.Manifest.Runs(m.Platform) {
		return nil, Record{}, fmt.Errorf("%w: bundle %s %s has no module for %s (it ships %s)",
			ErrNoModule, b.Manifest.Name, b.Manifest.Version, m.Platform, strings.Join(b.Manifest.Platforms(), ", "))
	}
	rec := Record{Manifest: b.Manifest, Grants: req.Grants, Config: req.Config, Tenants: req.Tenants, Signer: signer}
	var kept map[string]json.RawMessage // the installed version's secrets
	if installed != nil {
		if kept, err = m.Secrets(installed.Record); err != nil {
			return nil, Record{}, err
		}
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
	// Secret fields: a given value is taken, an absent or masked one keeps
	// the installed version's.
	public, given, err := splitConfig(rec.Config, b.Manifest.SecretFields())
	if err != nil {
		return nil, Record{}, err
	}
	secrets := map[string]json.RawMessage{}
	for _, f := range b.Manifest.SecretFields() {
		if v, ok := given[f]; ok && !isMask(v) {
			secrets[f] = v
		} else if v, ok := kept[f]; ok {
			secrets[f] = v
		}
	}
	full, err := mergeConfig(public, secrets)
	if err != nil {
		return nil, Record{}, err
	}
	if err := b.Manifest.ValidateConfig(full); err != nil {
		// The schema's own message may quote a value; the secrets' must not
		// leave the server, so it is left out when there are any.
		if len(secrets) > 0 {
			return nil, Record{}, fmt.Errorf("%w: bundle %s %s: config does not match the bundle's schema (the details are withheld because the configuration holds secrets %v)",
				ErrInvalidConfig, b.Manifest.Name, b.Manifest.Version, slices.Sorted(maps.Keys(secrets)))
		}
		return nil, Record{}, fmt.Errorf("%w: bundle %s %s: %w", ErrInvalidConfig, b.Manifest.Name, b.Manifest.Version, err)
	}
	if m.Check != nil {
		trial := rec
		trial.Config, trial.SecretNames = full, slices.Sorted(maps.Keys(secrets))
		if err := m.Check(ctx, b, trial); err != nil {
			if len(secrets) > 0 { // the module's message might quote a secret
				return nil, Record{}, fmt.Errorf("%w: bundle %s %s: %s", ErrRefused, b.Manifest.Name, b.Manifest.Version, redact(err.Error(), secrets))
			}
			return nil, Record{}, fmt.Errorf("%w: bundle %s %s: %w", ErrRefused, b.Manifest.Name, b.Manifest.Version, err)
		}
	}
	if rec.Sealed, err = m.seal(b.Manifest.Name, secrets); err != nil {
		return nil, Record{}, err
	}
	rec.Config = public
	rec.SecretNames = slices.Sorted(maps.Keys(secrets))
	return b, rec, nil
}

func (m *Manager) put(ctx context.Context, b *Bundle, rec Record, archive []byte, state string) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the bundle record: %w", err)
	}
	grants := rec.Grants
	if grants == nil {
		grants = []string{}
	}
	err = m.Store.PutBundle(ctx, store.Bundle{
		Name: b.Manifest.Name, Version: b.Manifest.Version, ABIVersion: b.Manifest.ABIVersion,
		Digest: b.Digest(), Manifest: raw, Archive: archive, State: state,
		Install: &store.BundleInstall{Grants: grants, Tenants: rec.Tenants, Config: rec.Config, Secrets: rec.Sealed,
			Signer: rec.Signer, PreviousVersion: rec.PreviousVersion},
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
	rec.PreviousVersion = active.Version
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
	rec.PreviousVersion = active.Record.PreviousVersion
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

// SetTenant enables (on) or disables the active version's extensions for
// one tenant. A bundle used by every tenant (no tenant list) is enabled for
// every tenant already; disabling one of its tenants, or the last tenant
// of a list, is refused: limit the bundle with a tenant list, or disable
// the whole bundle.
func (m *Manager) SetTenant(ctx context.Context, name, tenant string, on bool) (Version, error) {
	active, _, err := m.versionsOf(ctx, name)
	if err != nil {
		return Version{}, err
	}
	if active == nil {
		return Version{}, fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	tenants := slices.Clone(active.Record.Tenants)
	has := slices.Contains(tenants, tenant)
	switch {
	case on && (len(tenants) == 0 || has), !on && len(tenants) > 0 && !has:
		return *active, nil // nothing to change
	case on:
		tenants = append(tenants, tenant)
	case len(tenants) == 0:
		return Version{}, fmt.Errorf("%w: bundle %s is used by every tenant; give it a tenant list first (configure --tenant) to leave %s out", ErrConflict, name, tenant)
	case len(tenants) == 1:
		return Version{}, fmt.Errorf("%w: %s is the last tenant of bundle %s; disable the bundle instead", ErrConflict, tenant, name)
	default:
		tenants = slices.DeleteFunc(tenants, func(t string) bool { return t == tenant })
	}
	return m.Configure(ctx, name, nil, tenants)
}
