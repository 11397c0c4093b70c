package login

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParsePagesTheme checks ui.theme_dir's template overrides: a theme
// template replaces the built-in one of its name, the others stay, and a
// template that does not parse or lacks its define is refused.
func TestParsePagesTheme(t *testing.T) {
	write := func(t *testing.T, dir, name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "templates", name+".html"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	render := func(t *testing.T, ps pages, name string, data any) string {
		t.Helper()
		var b bytes.Buffer
		if err := ps[name].ExecuteTemplate(&b, "layout", data); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	t.Run("Override", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "info", `{{define "body"}}<p class="acme-info">{{.Message}}</p>{{end}}`)
		ps, err := parsePages(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := render(t, ps, "info", infoPage{page: page{Title: "T", Message: "<hello>"}})
		if !strings.Contains(out, `<p class="acme-info">&lt;hello&gt;</p>`) || !strings.Contains(out, `<main class="card"`) {
			t.Errorf("info page with the theme's body and the built-in layout:\n%s", out)
		}
		if out := render(t, ps, "logout", logoutPage{page: page{Title: "T"}}); strings.Contains(out, "acme-info") {
			t.Errorf("another page took the override:\n%s", out)
		}
	})
	t.Run("NoThemeDir", func(t *testing.T) {
		if _, err := parsePages(""); err != nil {
			t.Fatal(err)
		}
	})
	for name, body := range map[string]string{
		"Unparsable":    `{{define "body"}}{{.Message}`,
		"MissingDefine": `<p>no define</p>`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "consent", body)
			if _, err := parsePages(dir); err == nil {
				t.Error("a broken theme template was accepted")
			}
		})
	}
}
