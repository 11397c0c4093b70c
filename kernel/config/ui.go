package config

// UIConfig configures the server-rendered pages (login, consent, logout,
// device, errors).
type UIConfig struct {
	// ThemeDir is a folder that re-brands the pages: a latch.css there
	// replaces the stylesheet, and templates/<page>.html files there
	// (layout, login, consent, logout, info, device, frontchannel) replace
	// the built-in templates of the same name (docs/oauth.md, "Theming").
	// Empty: the built-in look.
	ThemeDir string `yaml:"theme_dir"`
}
