package password

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrPolicy is wrapped by the *PolicyError a password that breaks a Policy
// is refused with.
var ErrPolicy = errors.New("password does not meet the policy")

// Policy is a tenant's password policy (tenant setting password_policy,
// docs/authentication.md). The zero Policy accepts any password of 1 to
// MaxLength bytes.
type Policy struct {
	// MinLength is the fewest characters (Unicode code points). Default 8
	// when the policy is configured at all; 0 in the zero Policy.
	MinLength int `json:"min_length,omitempty"`
	// MaxLength is the most characters; 0 means up to MaxLength bytes.
	MaxLength int `json:"max_length,omitempty"`
	// RequireLower, RequireUpper, RequireDigit and RequireSymbol each ask
	// for at least one character of the class.
	RequireLower  bool `json:"require_lower,omitempty"`
	RequireUpper  bool `json:"require_upper,omitempty"`
	RequireDigit  bool `json:"require_digit,omitempty"`
	RequireSymbol bool `json:"require_symbol,omitempty"`
	// Pattern is a regular expression (RE2) the whole password must match.
	Pattern string `json:"pattern,omitempty"`
	// PatternMessage explains Pattern to the user.
	PatternMessage string `json:"pattern_message,omitempty"`
	// History refuses the last History passwords of the account again.
	History int `json:"history,omitempty"`
	// MaxAgeDays forces a change at login for a password older than
	// that; 0 never expires passwords.
	MaxAgeDays int `json:"max_age_days,omitempty"`
	// BreachCheck names an authenticator instance (such as the breachedpw
	// plugin) asked whether a new password is breached; empty: no check.
	BreachCheck string `json:"breach_check,omitempty"`

	re *regexp.Regexp
}

// MaxHistory bounds Policy.History.
const MaxHistory = 24

// Compile checks the policy and prepares its pattern.
func (p *Policy) Compile() error {
	var errs []error
	if p.MinLength < 0 || p.MaxLength < 0 || p.History < 0 || p.MaxAgeDays < 0 {
		errs = append(errs, errors.New("lengths, history and max_age_days must be >= 0"))
	}
	if p.MaxLength > 0 && p.MaxLength < p.MinLength {
		errs = append(errs, errors.New("max_length must be >= min_length"))
	}
	if p.History > MaxHistory {
		errs = append(errs, fmt.Errorf("history must be at most %d", MaxHistory))
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("pattern: %w", err))
		}
		p.re = re
	}
	if len(errs) > 0 {
		return fmt.Errorf("password policy: %w", errors.Join(errs...))
	}
	return nil
}

// Violation is one rule a password breaks.
type Violation struct {
	// Rule is the policy field broken: min_length, max_length,
	// require_lower, require_upper, require_digit, require_symbol,
	// pattern, history, breached.
	Rule string `json:"rule"`
	// Message says it to the user, in English.
	Message string `json:"message"`
}

// PolicyError lists every rule a password breaks.
type PolicyError struct {
	Violations []Violation
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.Message
	}
	return strings.Join(msgs, " ")
}

// Unwrap makes errors.Is(err, ErrPolicy) hold.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

// Check returns a *PolicyError listing the rules pw breaks, checking
// everything but History and BreachCheck (see CheckHistory); nil when it
// passes.
func (p *Policy) Check(pw string) error {
	var vs []Violation
	n := utf8.RuneCountInString(pw)
	if n == 0 || n < p.MinLength {
		vs = append(vs, Violation{"min_length", fmt.Sprintf("The password must be at least %d characters long.", max(p.MinLength, 1))})
	}
	if (p.MaxLength > 0 && n > p.MaxLength) || len(pw) > MaxLength {
		limit := p.MaxLength
		if limit == 0 {
			limit = MaxLength
		}
		vs = append(vs, Violation{"max_length", fmt.Sprintf("The password must be at most %d characters long.", limit)})
	}
	var lower, upper, digit, symbol bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			symbol = true
		}
	}
	if p.RequireLower && !lower {
		vs = append(vs, Violation{"require_lower", "The password must contain a lowercase letter."})
	}
	if p.RequireUpper && !upper {
		vs = append(vs, Violation{"require_upper", "The password must contain an uppercase letter."})
	}
	if p.RequireDigit && !digit {
		vs = append(vs, Violation{"require_digit", "The password must contain a digit."})
	}
	if p.RequireSymbol && !symbol {
		vs = append(vs, Violation{"require_symbol", "The password must contain a symbol or punctuation character."})
	}
	if p.Pattern != "" {
		if p.re == nil {
			if err := p.Compile(); err != nil {
				return err
			}
		}
		if !p.re.MatchString(pw) {
			msg := p.PatternMessage
			if msg == "" {
				msg = "The password does not have the required form."
			}
			vs = append(vs, Violation{"pattern", msg})
		}
	}
	if len(vs) > 0 {
		return &PolicyError{Violations: vs}
	}
	return nil
}

// Verifier checks a password against a stored hash; *Hasher implements it.
type Verifier interface {
	Verify(password, encoded string) (ok, needsRehash bool, err error)
}

// CheckHistory returns a *PolicyError when pw matches one of the last
// p.History hashes (newest first; the current hash counts as one).
func (p *Policy) CheckHistory(h Verifier, pw string, hashes []string) error {
	for i, enc := range hashes {
		if i >= p.History {
			break
		}
		if ok, _, err := h.Verify(pw, enc); err == nil && ok {
			return &PolicyError{Violations: []Violation{{"history", fmt.Sprintf("The password must differ from the last %d passwords of the account.", p.History)}}}
		}
	}
	return nil
}

// Expired reports whether a password set at changed is past MaxAgeDays at
// now. An unknown change time (zero) never expires.
func (p *Policy) Expired(changed, now time.Time) bool {
	return p.MaxAgeDays > 0 && !changed.IsZero() && now.Sub(changed) > time.Duration(p.MaxAgeDays)*24*time.Hour
}
