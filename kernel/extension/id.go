package extension

import (
	"errors"
	"fmt"
	"strings"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/kernel/authn"
	"github.com/latchid/latch/kernel/claims"
	"github.com/latchid/latch/kernel/grant"
	"github.com/latchid/latch/kernel/provision"
	"github.com/latchid/latch/kernel/throttle"
	"github.com/latchid/latch/kernel/userstore"
)

// Kind is an extension kind: one extension point with one Go interface. The
// values are the abi.Kind… names.
type Kind string

// Kinds, each with the Go interface its instances implement and the id
// namespace of its modules.
const (
	// KindAuthenticator modules implement authn.Authenticator; ids start
	// with "authn.".
	KindAuthenticator Kind = abi.KindAuthenticator
	// KindGrant modules implement grant.Type; ids start with "grant.".
	KindGrant Kind = abi.KindGrant
	// KindUserStore modules implement userstore.Store; ids start with
	// "userstore.".
	KindUserStore Kind = abi.KindUserStore
	// KindClaims modules implement claims.Mapper; ids start with
	// "claims.".
	KindClaims Kind = abi.KindClaims
	// KindThrottler modules implement throttle.Throttler; ids start with
	// "throttle.".
	KindThrottler Kind = abi.KindThrottler
	// KindProvisioner modules implement provision.Provisioner; ids start
	// with "provision.".
	KindProvisioner Kind = abi.KindProvisioner
)

// Kinds returns every kind, sorted by name.
func Kinds() []Kind {
	return []Kind{KindAuthenticator, KindClaims, KindGrant, KindProvisioner, KindThrottler, KindUserStore}
}

// Namespace returns the id namespace of the kind ("authn" for
// KindAuthenticator), or "" for an unknown kind.
func (k Kind) Namespace() string {
	switch k {
	case KindAuthenticator:
		return abi.NamespaceAuthenticator
	case KindGrant:
		return abi.NamespaceGrant
	case KindUserStore:
		return abi.NamespaceUserStore
	case KindClaims:
		return abi.NamespaceClaims
	case KindThrottler:
		return abi.NamespaceThrottler
	case KindProvisioner:
		return abi.NamespaceProvisioner
	}
	return ""
}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return k.Namespace() != ""
}

// ImplementedBy reports whether v implements the Go interface of the kind.
func (k Kind) ImplementedBy(v any) bool {
	var ok bool
	switch k {
	case KindAuthenticator:
		_, ok = v.(authn.Authenticator)
	case KindGrant:
		_, ok = v.(grant.Type)
	case KindUserStore:
		_, ok = v.(userstore.Store)
	case KindClaims:
		_, ok = v.(claims.Mapper)
	case KindThrottler:
		_, ok = v.(throttle.Throttler)
	case KindProvisioner:
		_, ok = v.(provision.Provisioner)
	}
	return ok
}

func kindOfNamespace(ns string) Kind {
	for _, k := range Kinds() {
		if k.Namespace() == ns {
			return k
		}
	}
	return ""
}

// ID names an extension module: a kind's namespace, a dot and a lowercase
// name, which may itself be dotted ("authn.password",
// "grant.client_credentials", "userstore.ldap", "authn.oidc.google"). Each
// dot-separated segment starts with a letter and holds only a-z, 0-9 and _;
// the whole id is at most MaxIDLength bytes.
type ID string

// MaxIDLength is the longest valid ID.
const MaxIDLength = 128

// ErrInvalidID means a string is not a valid ID.
var ErrInvalidID = errors.New("invalid extension id")

// ParseID checks s and returns it as an ID. The error wraps ErrInvalidID and
// says what is wrong.
func ParseID(s string) (ID, error) {
	if s == "" {
		return "", fmt.Errorf("parsing extension id: %w: empty", ErrInvalidID)
	}
	if len(s) > MaxIDLength {
		return "", fmt.Errorf("parsing extension id: %w: longer than %d bytes", ErrInvalidID, MaxIDLength)
	}
	ns, name, ok := strings.Cut(s, ".")
	if !ok {
		return "", fmt.Errorf("parsing extension id %q: %w: want <namespace>.<name>", s, ErrInvalidID)
	}
	if kindOfNamespace(ns) == "" {
		return "", fmt.Errorf("parsing extension id %q: %w: unknown namespace %q", s, ErrInvalidID, ns)
	}
	for seg := range strings.SplitSeq(name, ".") {
		if !validSegment(seg) {
			return "", fmt.Errorf("parsing extension id %q: %w: segment %q must match [a-z][a-z0-9_]*", s, ErrInvalidID, seg)
		}
	}
	return ID(s), nil
}

func validSegment(seg string) bool {
	if seg == "" || seg[0] < 'a' || seg[0] > 'z' {
		return false
	}
	for i := 1; i < len(seg); i++ {
		c := seg[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Namespace returns the part before the first dot ("authn").
func (id ID) Namespace() string {
	ns, _, _ := strings.Cut(string(id), ".")
	return ns
}

// Name returns the part after the first dot ("password").
func (id ID) Name() string {
	_, name, _ := strings.Cut(string(id), ".")
	return name
}

// Kind returns the kind the namespace names, or "" for an invalid id.
func (id ID) Kind() Kind {
	return kindOfNamespace(id.Namespace())
}

// String returns the id.
func (id ID) String() string {
	return string(id)
}

// MaxInstanceNameLength is the longest valid instance name.
const MaxInstanceNameLength = 128

// validInstanceName reports whether s is a valid instance name: 1 to
// MaxInstanceNameLength bytes of a-z, 0-9, '_', '-' and '.', starting with
// a letter or digit.
func validInstanceName(s string) bool {
	if s == "" || len(s) > MaxInstanceNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}
