package store

// BundleInstall is what the operator decided when installing or
// configuring a bundle version, kept in columns of its own.
type BundleInstall struct {
	// Grants are the capabilities granted.
	Grants []string
	// Tenants, when not empty, are the only tenants that use the bundle.
	Tenants []string
	// Config is the configuration (JSON) without its secret values.
	Config []byte
	// Secrets is the configuration's secret values, sealed under the
	// master key; nil for none.
	Secrets []byte
	// Signer is the key id of the bundle's signer ("" when unsigned).
	Signer string
	// PreviousVersion is the version this one replaced ("" for a first
	// install).
	PreviousVersion string
}
