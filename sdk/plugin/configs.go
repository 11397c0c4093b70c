package plugin

// Configs keeps the parsed form of the configurations an extension is
// called with. The host configures each instance of a module once, but any
// warm instance may serve any configured extension instance, and every
// request carries its instance's configuration (the request's Config
// field): an extension therefore looks its configuration up by those bytes
// on each call, rather than keeping what Configure saw. Configs parses each
// distinct configuration once and then answers from memory, so no JSON is
// decoded on the hot path.
//
//	var configs = plugin.Configs[*policy]{Parse: parsePolicy}
//
//	func (a *auth) Configure(raw []byte) error { _, err := configs.Get(raw); return err }
//
//	func (a *auth) Authenticate(req abi.AuthenticateRequest) (abi.AuthenticateResponse, error) {
//		p, err := configs.Get(req.Config)
//		...
//
// A guest runs one call at a time, so Configs needs no lock.
type Configs[T any] struct {
	// Parse checks and parses one configuration; its error refuses it
	// (return a *Error with ErrInvalidRequest's code).
	Parse func(raw []byte) (T, error)

	parsed map[string]T
}

// MaxConfigs bounds the parsed configurations kept; past it the cache
// starts afresh. A module has a handful of configured instances in
// practice.
const MaxConfigs = 64

// Get returns the parsed configuration raw; an empty raw is parsed as "{}".
func (c *Configs[T]) Get(raw []byte) (T, error) {
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if v, ok := c.parsed[string(raw)]; ok {
		return v, nil
	}
	v, err := c.Parse(raw)
	if err != nil {
		var zero T
		return zero, err
	}
	if c.parsed == nil || len(c.parsed) >= MaxConfigs {
		c.parsed = make(map[string]T)
	}
	c.parsed[string(raw)] = v
	return v, nil
}
