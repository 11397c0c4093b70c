package store

import "time"

// Reserved user attributes of a suspension. An administrator suspends a
// user through the admin API (POST /users/{id}/suspend); clients of the
// admin API and SCIM cannot write these attributes directly.
const (
	// AttrSuspendedAt holds when the suspension began (RFC 3339); its
	// presence marks the user suspended.
	AttrSuspendedAt = "latch.suspended_at"
	// AttrSuspendedUntil holds when the suspension ends (RFC 3339);
	// absent, it lasts until an administrator lifts it.
	AttrSuspendedUntil = "latch.suspended_until"
	// AttrSuspensionReason holds the administrator's reason.
	AttrSuspensionReason = "latch.suspension_reason"
)

// IsSuspensionAttr reports whether name is one of the reserved
// attributes of a suspension.
func IsSuspensionAttr(name string) bool {
	return name == AttrSuspendedAt || name == AttrSuspendedUntil || name == AttrSuspensionReason
}

// Suspension is a user's suspension as its attributes record it.
type Suspension struct {
	Since time.Time
	// Until is zero for a suspension that lasts until it is lifted.
	Until  time.Time
	Reason string
}

// SuspensionOf returns u's suspension; ok is false when u is not
// suspended, whether or not a recorded end has passed (see Active).
func SuspensionOf(u User) (s Suspension, ok bool) {
	at, ok := u.Attributes[AttrSuspendedAt].(string)
	if !ok {
		return Suspension{}, false
	}
	s.Since, _ = time.Parse(time.RFC3339, at)
	if v, _ := u.Attributes[AttrSuspendedUntil].(string); v != "" {
		until, err := time.Parse(time.RFC3339, v)
		if err != nil {
			// An unreadable end never lifts the suspension by itself.
			until = time.Time{}
		}
		s.Until = until
	}
	s.Reason, _ = u.Attributes[AttrSuspensionReason].(string)
	return s, true
}

// Active reports whether the suspension is in force at now.
func (s Suspension) Active(now time.Time) bool {
	return s.Until.IsZero() || now.Before(s.Until)
}

// Suspended reports whether u is suspended at now.
func Suspended(u User, now time.Time) bool {
	s, ok := SuspensionOf(u)
	return ok && s.Active(now)
}

// Suspend records a suspension on u (until zero: until lifted).
func Suspend(u *User, now, until time.Time, reason string) {
	if u.Attributes == nil {
		u.Attributes = map[string]any{}
	}
	u.Attributes[AttrSuspendedAt] = now.UTC().Format(time.RFC3339)
	delete(u.Attributes, AttrSuspendedUntil)
	if !until.IsZero() {
		u.Attributes[AttrSuspendedUntil] = until.UTC().Format(time.RFC3339)
	}
	delete(u.Attributes, AttrSuspensionReason)
	if reason != "" {
		u.Attributes[AttrSuspensionReason] = reason
	}
}

// Unsuspend removes u's suspension, if any, and reports whether there
// was one.
func Unsuspend(u *User) bool {
	_, ok := u.Attributes[AttrSuspendedAt]
	for _, k := range []string{AttrSuspendedAt, AttrSuspendedUntil, AttrSuspensionReason} {
		delete(u.Attributes, k)
	}
	return ok
}
