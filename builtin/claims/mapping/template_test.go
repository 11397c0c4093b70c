package mapping

import (
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	claims := map[string]any{
		"given_name": "Alice", "family_name": "Liddell", "age": float64(30.5), "admin": false,
		"groups": []any{"a", "b"}, "nothing": nil,
	}
	tests := []struct {
		name     string
		template string
		want     string
		wantErr  string
	}{
		{name: "two claims", template: "{given_name} {family_name}", want: "Alice Liddell"},
		{name: "literal text only", template: "constant", want: "constant"},
		{name: "a number and a boolean as JSON", template: "{age}/{admin}", want: "30.5/false"},
		{name: "an array as JSON", template: "{groups}", want: `["a","b"]`},
		{name: "absent and null claims are empty", template: "[{missing}{nothing}]", want: "[]"},
		{name: "doubled braces are literal", template: "{{{given_name}}}", want: "{Alice}"},
		{name: "surrounding spaces are trimmed", template: "  {missing} {given_name}  ", want: "Alice"},
		{name: "a claim name with spaces and slashes", template: "{http://x/y z}", want: ""},
		{name: "unclosed", template: "{given_name", wantErr: "the '{' at byte 0 is not closed"},
		{name: "nested opening", template: "{a{b}", wantErr: "the '{' at byte 0 is not closed"},
		{name: "stray closing", template: "a}", wantErr: "the '}' at byte 1 closes nothing"},
		{name: "empty placeholder", template: "{}", wantErr: "the placeholder at byte 0 names no claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := parseTemplate(tt.template)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(segs, claims); got != tt.want {
				t.Errorf("render = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzTemplate checks that parsing any template either fails or gives
// segments that render, and that a template without braces renders as
// itself (trimmed).
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"{given_name} {family_name}", "{{x}}", "{", "}", "{}", "a{b}c{{d}}e", "{{{x}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := parseTemplate(s)
		if err != nil {
			return
		}
		got := render(segs, map[string]any{"x": "y"})
		if !strings.ContainsAny(s, "{}") && got != strings.TrimSpace(s) {
			t.Fatalf("render(%q) = %q", s, got)
		}
	})
}
