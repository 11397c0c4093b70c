package ldap

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchid/latch/abi"
)

// errEntry means a directory entry cannot be read as a user or group.
var errEntry = errors.New("unusable directory entry")

// Active Directory userAccountControl bits (MS-ADTS 2.2.16).
const (
	uacAccountDisable = 0x2
	uacNormalAccount  = 0x200
)

// entryToUser reads a directory entry as a user. It fails when the entry
// has no id or no username; it never fails on the other attributes.
func (st *settings) entryToUser(e *goldap.Entry) (abi.User, error) {
	a := st.users.Attributes
	id, err := readID(e, a.ID, a.IDFormat)
	if err != nil {
		return abi.User{}, err
	}
	u := abi.User{
		ID:            id,
		Username:      first(e, a.Username),
		Email:         first(e, a.Email),
		EmailVerified: st.users.EmailVerified,
		PhoneNumber:   first(e, a.PhoneNumber),
		DisplayName:   first(e, a.DisplayName),
		GivenName:     first(e, a.GivenName),
		FamilyName:    first(e, a.FamilyName),
		Enabled:       true,
	}
	if u.Username == "" {
		return abi.User{}, fmt.Errorf("%w: %q has no %s", errEntry, e.DN, a.Username)
	}
	if u.Email == "" {
		u.EmailVerified = false
	}
	s := st.users.State
	switch {
	case s.ActiveDirectory:
		if uac, err := strconv.ParseInt(first(e, "userAccountControl"), 10, 64); err == nil && uac&uacAccountDisable != 0 {
			u.Enabled = false
		}
		if lt := first(e, "lockoutTime"); lt != "" && lt != "0" {
			u.Locked = true
		}
	case s.DisabledAttribute != "":
		vals := e.GetEqualFoldAttributeValues(s.DisabledAttribute)
		if s.DisabledValue == "" {
			u.Enabled = len(vals) == 0
		} else {
			u.Enabled = !slices.ContainsFunc(vals, func(v string) bool { return strings.EqualFold(v, s.DisabledValue) })
		}
	}
	if s.LockedAttribute != "" && len(e.GetEqualFoldRawAttributeValues(s.LockedAttribute)) > 0 {
		u.Locked = true
	}
	for _, name := range sortedKeys(a.Extra) {
		raw := e.GetEqualFoldRawAttributeValues(a.Extra[name])
		switch len(raw) {
		case 0:
			continue
		case 1:
			if u.Attributes == nil {
				u.Attributes = map[string]any{}
			}
			u.Attributes[name] = attributeText(raw[0])
		default:
			vals := make([]any, len(raw))
			for i, r := range raw {
				vals[i] = attributeText(r)
			}
			if u.Attributes == nil {
				u.Attributes = map[string]any{}
			}
			u.Attributes[name] = vals
		}
	}
	return u, nil
}

// entryToGroup reads a directory entry as a group.
func (st *settings) entryToGroup(e *goldap.Entry) (abi.Group, error) {
	g := st.groups
	id, err := readID(e, g.ID, g.IDFormat)
	if err != nil {
		return abi.Group{}, err
	}
	name := first(e, g.Name)
	if name == "" {
		return abi.Group{}, fmt.Errorf("%w: %q has no %s", errEntry, e.DN, g.Name)
	}
	return abi.Group{ID: id, Name: name, Description: first(e, g.Description)}, nil
}

// readID reads the id attribute in its format.
func readID(e *goldap.Entry, attr, format string) (string, error) {
	raw := e.GetEqualFoldRawAttributeValue(attr)
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: %q has no %s", errEntry, e.DN, attr)
	}
	if format == IDFormatGUID {
		id, err := formatGUID(raw)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", errEntry, e.DN, err)
		}
		return id, nil
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("%w: %q: %s is binary; use id_format guid", errEntry, e.DN, attr)
	}
	return string(raw), nil
}

// idFilter returns the filter assertion matching id, or false when id
// cannot be an id of the format (so that no entry can match).
func idFilter(attr, format, id string) (string, bool) {
	if format == IDFormatGUID {
		b, err := parseGUID(id)
		if err != nil {
			return "", false
		}
		var sb strings.Builder
		for _, c := range b {
			fmt.Fprintf(&sb, `\%02x`, c)
		}
		return "(" + attr + "=" + sb.String() + ")", true
	}
	if id == "" || len(id) > maxUsernameLength {
		return "", false
	}
	return "(" + attr + "=" + goldap.EscapeFilter(id) + ")", true
}

// formatGUID writes a 16-byte objectGUID as Active Directory shows it: the
// first three groups are little-endian.
func formatGUID(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("a GUID has 16 bytes, not %d", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]),
		b[8:10], b[10:16]), nil
}

// parseGUID is the inverse of formatGUID.
func parseGUID(s string) ([]byte, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, errors.New("not a GUID")
	}
	h, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return nil, fmt.Errorf("not a GUID: %w", err)
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:4], binary.BigEndian.Uint32(h[0:4]))
	binary.LittleEndian.PutUint16(b[4:6], binary.BigEndian.Uint16(h[4:6]))
	binary.LittleEndian.PutUint16(b[6:8], binary.BigEndian.Uint16(h[6:8]))
	copy(b[8:], h[8:])
	return b, nil
}

// attributeText is a value as text: UTF-8 as it is, anything else (a
// photo, a SID) in standard base64.
func attributeText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// first returns the first value of attr, or "" (also for an unmapped
// attribute).
func first(e *goldap.Entry, attr string) string {
	if attr == "" || attr == unmapped {
		return ""
	}
	return e.GetEqualFoldAttributeValue(attr)
}

// Cursors are opaque to callers: "o" and an offset in base64url. They
// carry an offset because RFC 2696 cookies are bound to the connection
// that made them, and a cursor outlives its connection.
const maxOffset = 10_000_000

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(offset)))
}

// decodeCursor reads a cursor; "" is the first page.
func decodeCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	if len(c) > 32 {
		return 0, errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 'o' {
		return 0, errors.New("malformed cursor")
	}
	n, err := strconv.Atoi(string(b[1:]))
	if err != nil || n <= 0 || n > maxOffset || encodeCursor(n) != c {
		return 0, errors.New("malformed cursor")
	}
	return n, nil
}

// attributeValues turns a user attribute value (a string, number, boolean
// or a list of them) into directory values.
func attributeValues(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case bool:
		if x {
			return []string{"TRUE"}, nil
		}
		return []string{"FALSE"}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}, nil
	case int:
		return []string{strconv.Itoa(x)}, nil
	case int64:
		return []string{strconv.FormatInt(x, 10)}, nil
	case fmt.Stringer:
		return []string{x.String()}, nil
	case []string:
		return slices.Clone(x), nil
	case []any:
		var out []string
		for _, e := range x {
			if _, nested := e.([]any); nested {
				return nil, errors.New("nested lists cannot be stored")
			}
			vs, err := attributeValues(e)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T cannot be stored", v)
}

// adPassword encodes a password for unicodePwd: the quoted password in
// UTF-16LE (MS-ADTS 3.1.1.3.1.5).
func adPassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// adBindOutcome reads the Active Directory sub-error of a failed bind
// (the "data 775" in the diagnostic message) as an outcome: 775 locked,
// 533 disabled; anything else is a wrong password.
func adBindOutcome(diag string) string {
	_, rest, ok := strings.Cut(diag, "data ")
	if !ok {
		return abi.UserInvalidCredentials
	}
	code, _, _ := strings.Cut(rest, ",")
	switch strings.TrimSpace(code) {
	case "775":
		return abi.UserLocked
	case "533":
		return abi.UserDisabled
	}
	return abi.UserInvalidCredentials
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func sortGroups(gs []abi.Group) {
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].Name != gs[j].Name {
			return gs[i].Name < gs[j].Name
		}
		return gs[i].ID < gs[j].ID
	})
}
