package ldap

import (
	"context"
	"fmt"

	"github.com/latchid/latch/kernel/fault"
	"github.com/latchid/latch/kernel/userstore"
)

// maxReadAttributes bounds the attributes one ReadAttributes call names.
const maxReadAttributes = 64

// ReadAttributes reads named directory attributes of the user with the id:
// the claims an administrator maps to this directory's attributes
// (docs/claims.md). A single value is a string, several a list; binary
// values are base64. Attributes the entry lacks are left out.
func (s *Store) ReadAttributes(ctx context.Context, tenant, id string, names []string) (map[string]any, error) {
	if s.off {
		return nil, userstore.ErrNotFound
	}
	if len(names) > maxReadAttributes {
		return nil, fault.InvalidRequest.WithMessagef("at most %d attributes may be read at once", maxReadAttributes)
	}
	for _, n := range names {
		if !validAttribute(n) {
			return nil, fault.InvalidRequest.WithMessagef("%q is not an attribute name", clipName(n))
		}
	}
	out := map[string]any{}
	if len(names) == 0 {
		return out, nil
	}
	a := s.st.users.Attributes
	f, ok := idFilter(a.ID, a.IDFormat, id)
	if !ok {
		return nil, userstore.ErrNotFound
	}
	entries, err := s.search(ctx, s.st.users.BaseDN, s.st.userScope, and([]string{s.st.userFilter, f}), names, 2)
	if err != nil {
		return nil, fmt.Errorf("reading attributes of user %q: %w", id, ldapFault(err, "searching the user"))
	}
	switch len(entries) {
	case 0:
		return nil, userstore.ErrNotFound
	case 1:
	default:
		return nil, fault.Internal.WithMessage("the user id matches several directory entries")
	}
	e := entries[0]
	for _, n := range names {
		vals := e.GetEqualFoldRawAttributeValues(n)
		switch len(vals) {
		case 0:
		case 1:
			out[n] = attributeText(vals[0])
		default:
			l := make([]any, len(vals))
			for i, v := range vals {
				l[i] = attributeText(v)
			}
			out[n] = l
		}
	}
	return out, nil
}

// IsReadOnly reports whether the store refuses writes: read_only mode (the
// default), or an instance without configuration.
func (s *Store) IsReadOnly() bool { return s.off || s.st == nil || s.st.readOnly }

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

var (
	_ userstore.AttributeReader  = (*Store)(nil)
	_ userstore.ReadOnlyReporter = (*Store)(nil)
)
