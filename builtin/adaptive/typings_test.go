package adaptive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTypingsCoverTheAPI checks that sdk/adaptive/latch-adaptive.d.ts
// declares every global the engine installs, and nothing it does not.
func TestTypingsCoverTheAPI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "sdk", "adaptive", "latch-adaptive.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	dts := string(b)
	e := newEngine(t, nil)
	s := mustCompile(t, e, "function onLoginRequest(c) {}")
	v := s.get()
	if v == nil {
		t.Fatal("no pooled runtime")
	}
	declared := map[string]bool{}
	for _, line := range strings.Split(dts, "\n") {
		for _, p := range []string{"declare function ", "declare const ", "declare var "} {
			if rest, ok := strings.CutPrefix(line, p); ok {
				declared[strings.FieldsFunc(rest, func(r rune) bool { return r == '(' || r == ':' || r == ' ' })[0]] = true
			}
		}
	}
	installed := map[string]bool{}
	for _, k := range v.rt.GlobalObject().Keys() {
		installed[k] = true
	}
	delete(installed, "require") // thrown at on purpose; editors should not offer it
	for name := range installed {
		if !declared[name] {
			t.Errorf("%s is installed but not declared in latch-adaptive.d.ts", name)
		}
	}
	for name := range declared {
		if !installed[name] {
			t.Errorf("%s is declared in latch-adaptive.d.ts but not installed", name)
		}
	}
}
