package password

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func rules(err error) []string {
	var pe *PolicyError
	if !errors.As(err, &pe) {
		return nil
	}
	out := make([]string, len(pe.Violations))
	for i, v := range pe.Violations {
		out[i] = v.Rule
	}
	return out
}

func TestPolicyCheck(t *testing.T) {
	p := Policy{MinLength: 10, MaxLength: 20, RequireLower: true, RequireUpper: true, RequireDigit: true, RequireSymbol: true, Pattern: `^[^@]*$`}
	if err := p.Compile(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want string
	}{
		{"Correct-Horse-9", ""},
		{"Kürbis-Suppe-7", ""}, // classes are Unicode letters, length counts characters
		{"short", "min_length require_upper require_digit require_symbol"},
		{"ALLUPPER-1234567", "require_lower"},
		{"Very-Long-Password-12345", "max_length"},
		{"has@sign-Aa1xxxx", "pattern"},
		{"", "min_length require_lower require_upper require_digit require_symbol"},
	} {
		err := p.Check(tc.pw)
		if got := strings.Join(rules(err), " "); got != tc.want {
			t.Errorf("Check(%q) rules = %q, want %q (%v)", tc.pw, got, tc.want, err)
		}
		if err != nil && !errors.Is(err, ErrPolicy) {
			t.Errorf("Check(%q) = %v, not ErrPolicy", tc.pw, err)
		}
	}
	var zero Policy
	if err := zero.Check("x"); err != nil {
		t.Errorf("the zero policy refused a password: %v", err)
	}
	if err := zero.Check(strings.Repeat("x", MaxLength+1)); err == nil {
		t.Error("the zero policy accepted a password over MaxLength")
	}
}

func TestPolicyCompileRefuses(t *testing.T) {
	for _, p := range []Policy{{MinLength: -1}, {MinLength: 10, MaxLength: 5}, {History: MaxHistory + 1}, {Pattern: "("}} {
		if err := p.Compile(); err == nil {
			t.Errorf("Compile(%+v) accepted", p)
		}
	}
}

func TestPolicyHistoryAndAge(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	var hashes []string
	for _, pw := range []string{"newest", "older", "oldest"} {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, enc)
	}
	p := Policy{History: 2}
	if got := rules(p.CheckHistory(h, "older", hashes)); len(got) != 1 || got[0] != "history" {
		t.Errorf("a password among the last 2: %v", got)
	}
	if err := p.CheckHistory(h, "oldest", hashes); err != nil {
		t.Errorf("a password beyond the history was refused: %v", err)
	}
	now := time.Now()
	p.MaxAgeDays = 30
	if !p.Expired(now.Add(-31*24*time.Hour), now) || p.Expired(now.Add(-29*24*time.Hour), now) || p.Expired(time.Time{}, now) {
		t.Error("Expired is wrong")
	}
}

// FuzzPolicyCheck: any password, under a policy with every rule, is
// judged without panicking, and an accepted one meets the length bounds.
func FuzzPolicyCheck(f *testing.F) {
	for _, s := range []string{"", "a", "Correct-Horse-9", "\xff\xfe", strings.Repeat("ü", 300)} {
		f.Add(s)
	}
	p := Policy{MinLength: 8, MaxLength: 64, RequireLower: true, RequireUpper: true, RequireDigit: true, RequireSymbol: true, Pattern: `^\S+$`}
	if err := p.Compile(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if err := p.Check(pw); err == nil {
			n := len([]rune(pw))
			if n < 8 || n > 64 {
				t.Fatalf("accepted %q of %d characters", pw, n)
			}
		}
	})
}
