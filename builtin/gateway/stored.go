package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchid/latch/kernel/store"
)

// APIs and upstreams managed through the admin API live in the store beside
// the deny policies (namespace DenyNamespace, the default tenant), one entry
// per API keyed APIKeyPrefix + name and one per upstream keyed
// UpstreamKeyPrefix + name, each value the JSON form of an APIConfig or
// UpstreamConfig (the routes file's fields, in JSON).
//
// They are merged with the routes file: the file's issuers, APIs and
// upstreams come first, and a stored API or upstream whose name the file
// already uses is left out (the file wins, and the admin API refuses such
// names). Every gateway node re-reads them each deny_poll_interval and at
// once on the cluster's change notification, and swaps in the merged
// configuration like a routes file reload: a merge that does not validate is
// refused and the running configuration stays.
const (
	APIKeyPrefix      = "api/"
	UpstreamKeyPrefix = "upstream/"
)

// Kinds of stored document.
const (
	KindAPI      = "api"
	KindUpstream = "upstream"
)

// MaxDocumentBytes bounds one stored API or upstream document.
const MaxDocumentBytes = 1 << 20

// storedDocs are the stored APIs and upstreams, by name.
type storedDocs struct {
	apis, upstreams map[string][]byte
}

func (s *storedDocs) clone() *storedDocs {
	c := &storedDocs{apis: map[string][]byte{}, upstreams: map[string][]byte{}}
	if s != nil {
		for k, v := range s.apis {
			c.apis[k] = v
		}
		for k, v := range s.upstreams {
			c.upstreams[k] = v
		}
	}
	return c
}

// digest hashes the documents in name order.
func (s *storedDocs) digest(h io.Writer) {
	if s == nil {
		return
	}
	for _, m := range []map[string][]byte{s.apis, s.upstreams} {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			_, _ = fmt.Fprintf(h, "\x00%s\x00%d\x00", n, len(m[n]))
			_, _ = h.Write(m[n])
		}
	}
}

// loadStored reads the stored APIs and upstreams.
func (g *Gateway) loadStored(ctx context.Context) (*storedDocs, error) {
	s := &storedDocs{apis: map[string][]byte{}, upstreams: map[string][]byte{}}
	if g.d.KV == nil {
		return s, nil
	}
	for prefix, m := range map[string]map[string][]byte{APIKeyPrefix: s.apis, UpstreamKeyPrefix: s.upstreams} {
		page := store.Page{Limit: store.MaxPageLimit}
		for {
			entries, after, err := g.d.KV.KVList(ctx, DenyNamespace, g.d.TenantID, prefix, page)
			if err != nil {
				return nil, fmt.Errorf("listing stored gateway %ss: %w", strings.TrimSuffix(prefix, "/"), err)
			}
			for _, e := range entries {
				m[strings.TrimPrefix(e.Key, prefix)] = e.Value
			}
			if after == "" {
				break
			}
			page.After = after
		}
	}
	return s, nil
}

// DecodeAPI decodes one API document (JSON or YAML) strictly, without
// validating it.
func DecodeAPI(doc []byte) (APIConfig, error) {
	var a APIConfig
	return a, decodeDoc(doc, &a)
}

// DecodeUpstream decodes one upstream document strictly.
func DecodeUpstream(doc []byte) (UpstreamConfig, error) {
	var u UpstreamConfig
	return u, decodeDoc(doc, &u)
}

func decodeDoc(doc []byte, v any) error {
	if len(doc) > MaxDocumentBytes {
		return fmt.Errorf("%w: larger than %d bytes", ErrInvalidConfig, MaxDocumentBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the document is empty", ErrInvalidConfig)
		}
		return fmt.Errorf("%w: decoding: %w", ErrInvalidConfig, err)
	}
	return nil
}

// merge decodes the routes file and adds the stored documents whose names
// the file does not use; it returns the merged configuration, validated,
// and the names left out.
func merge(file []byte, st *storedDocs) (*Config, []string, error) {
	c, err := decodeConfig(file)
	if err != nil {
		return nil, nil, err
	}
	var skipped []string
	if st != nil {
		have := map[string]bool{}
		for _, u := range c.Upstreams {
			have[u.Name] = true
		}
		for _, n := range sortedKeys(st.upstreams) {
			if have[n] {
				skipped = append(skipped, "upstream "+n)
				continue
			}
			u, err := DecodeUpstream(st.upstreams[n])
			if err != nil {
				return nil, nil, fmt.Errorf("stored upstream %q: %w", n, err)
			}
			if u.Name != n {
				return nil, nil, fmt.Errorf("%w: stored upstream %q: its name is %q", ErrInvalidConfig, n, u.Name)
			}
			c.Upstreams = append(c.Upstreams, u)
		}
		have = map[string]bool{}
		for _, a := range c.APIs {
			have[a.Name] = true
		}
		for _, n := range sortedKeys(st.apis) {
			if have[n] {
				skipped = append(skipped, "api "+n)
				continue
			}
			a, err := DecodeAPI(st.apis[n])
			if err != nil {
				return nil, nil, fmt.Errorf("stored API %q: %w", n, err)
			}
			if a.Name != n {
				return nil, nil, fmt.Errorf("%w: stored API %q: its name is %q", ErrInvalidConfig, n, a.Name)
			}
			c.APIs = append(c.APIs, a)
		}
	}
	if err := c.validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, skipped, nil
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CheckStored reports whether storing doc as the API or upstream name
// (kind KindAPI or KindUpstream; a nil doc deletes it) leaves a
// configuration this gateway would run: the routes file and the other stored
// documents merged with the change, validated as a reload would. The
// admin API calls it before writing, so that a bad document is refused
// with its error instead of being refused by every node.
func (g *Gateway) CheckStored(ctx context.Context, kind, name string, doc []byte) error {
	file, err := g.readFile()
	if err != nil {
		return err
	}
	cur, err := g.loadStored(ctx)
	if err != nil {
		return err
	}
	next := cur.clone()
	m := next.apis
	if kind == KindUpstream {
		m = next.upstreams
	}
	if doc == nil {
		delete(m, name)
	} else {
		m[name] = doc
		if fc, err := decodeConfig(file); err == nil {
			if kind == KindAPI && slices.ContainsFunc(fc.APIs, func(a APIConfig) bool { return a.Name == name }) ||
				kind == KindUpstream && slices.ContainsFunc(fc.Upstreams, func(u UpstreamConfig) bool { return u.Name == name }) {
				return fmt.Errorf("%w: the routes file already defines the %s %q", ErrNameTaken, kind, name)
			}
		}
	}
	_, _, err = merge(file, next)
	return err
}

// ErrNameTaken is returned by CheckStored for a name the routes file uses.
var ErrNameTaken = errors.New("name taken")

// CheckDocument validates a stored document on its own, for a node without
// the gateway role: its structure and values are checked, while its
// references to upstreams and issuers are assumed to exist (every gateway
// node checks them when it merges the document).
func CheckDocument(kind string, doc []byte) error {
	c := &Config{}
	switch kind {
	case KindUpstream:
		u, err := DecodeUpstream(doc)
		if err != nil {
			return err
		}
		c.Upstreams = []UpstreamConfig{u}
	case KindAPI:
		a, err := DecodeAPI(doc)
		if err != nil {
			return err
		}
		if a.Upstream != "" {
			c.Upstreams = []UpstreamConfig{{Name: a.Upstream, Endpoints: []EndpointConfig{{URL: "http://upstream.invalid"}}}}
		}
		names := map[string]bool{"assumed": true}
		for _, n := range a.Security.Issuers {
			names[n] = true
		}
		for _, r := range a.Routes {
			if r.Security != nil {
				for _, n := range r.Security.Issuers {
					names[n] = true
				}
			}
		}
		for _, n := range sortedKeys(boolKeys(names)) {
			c.Issuers = append(c.Issuers, IssuerConfig{Name: n, Issuer: "https://" + n + ".invalid", JWKSURI: "https://" + n + ".invalid/jwks",
				Algorithms: []string{"RS256"}, Audiences: []string{"assumed"}})
		}
		c.APIs = []APIConfig{a}
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func boolKeys(m map[string]bool) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k := range m {
		out[k] = nil
	}
	return out
}

// stateHash is the hash of a routes file and the stored documents.
func stateHash(file []byte, st *storedDocs) [32]byte {
	h := sha256.New()
	_, _ = h.Write(file)
	st.digest(h)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
