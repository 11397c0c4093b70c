package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// mask replaces a secret when printed.
const mask = "********"

// Secret is a configuration string that must not be shown: String, the
// YAML and JSON encodings, slog and %v/%#v print "********" when it is not
// empty. Use Value to read it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "********", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// DSN is a database data source name whose password is masked when printed
// (String, YAML, JSON, slog, %v/%#v); everything else stays visible to help
// diagnose connection problems. Both URL ("postgres://u:pw@host/db") and
// key=value ("host=h password=pw") forms are masked. Use Value to read it.
type DSN string

// Value returns the DSN itself.
func (d DSN) Value() string { return string(d) }

// String returns the DSN with its password replaced by "********".
func (d DSN) String() string { return maskDSN(string(d)) }

// GoString masks the password in %#v.
func (d DSN) GoString() string { return strconv.Quote(d.String()) }

// LogValue masks the password in slog output.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalYAML masks the password.
func (d DSN) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON masks the password.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// kvPassword matches password=value in key=value DSNs (libpq connection
// strings), the value plain or single-quoted with backslash escapes.
var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s]*)`)

func maskDSN(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			// Cannot tell where the password is: hide everything.
			return mask
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "pass") {
				q[k] = []string{mask}
			}
		}
		if len(q) > 0 {
			u.RawQuery = q.Encode()
		}
		// url.URL escapes the mask's asterisks in user info; undo that for
		// readability.
		return strings.ReplaceAll(u.String(), url.QueryEscape(mask), mask)
	}
	return kvPassword.ReplaceAllString(s, "${1}"+mask)
}

// ByteSize is a size in bytes. In YAML and the environment it is a plain
// number of bytes or a number with a unit: B, KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024), case-insensitive, e.g. "1MiB",
// "512 KiB", "1048576".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	// Longest first so "kib" is tried before "b".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"b", 1},
}

// UnmarshalText parses a size.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML parses a size from a YAML scalar, naming the line on error
// (yaml.v3 drops the line for TextUnmarshaler errors).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a number or a string like 1MiB", n.Line)
	}
	if err := b.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalText writes the size with the largest binary unit that divides it
// exactly ("1MiB"), or as plain bytes.
func (b ByteSize) MarshalText() ([]byte, error) {
	return []byte(b.String()), nil
}

// String formats the size as MarshalText does.
func (b ByteSize) String() string {
	n := int64(b)
	for _, u := range []struct {
		name string
		f    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.f == 0 {
			return strconv.FormatInt(n/u.f, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseByteSize parses a size as ByteSize.UnmarshalText does.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, factor = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing size %q: want bytes or a number with B, KB, MB, GB, KiB, MiB or GiB", s)
	}
	if n > 0 && n > (1<<62)/factor || n < 0 && n < -(1<<62)/factor {
		return 0, fmt.Errorf("parsing size %q: too large", s)
	}
	return ByteSize(n * factor), nil
}
