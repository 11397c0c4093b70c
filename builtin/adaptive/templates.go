package adaptive

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed templates/*.js
var templateFS embed.FS

// Template is a ready-made script.
type Template struct {
	// Name is the file name without .js ("role-based").
	Name string `json:"name"`
	// Title and Description come from the comment at the top of the file.
	Title       string `json:"title"`
	Description string `json:"description"`
	// Source is the script.
	Source string `json:"source"`
}

// Templates returns the bundled templates, sorted by name.
func Templates() []Template {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil // the directory is embedded; it cannot be missing
	}
	var out []Template
	for _, e := range entries {
		b, err := templateFS.ReadFile(path.Join("templates", e.Name()))
		if err != nil {
			continue
		}
		t := Template{Name: strings.TrimSuffix(e.Name(), ".js"), Source: string(b)}
		var desc []string
		for i, line := range strings.Split(t.Source, "\n") {
			text, ok := strings.CutPrefix(line, "//")
			if !ok {
				break
			}
			text = strings.TrimSpace(text)
			if i == 0 {
				t.Title = text
			} else {
				desc = append(desc, text)
			}
		}
		t.Description = strings.Join(desc, " ")
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TemplateByName returns the named template.
func TemplateByName(name string) (Template, bool) {
	for _, t := range Templates() {
		if t.Name == name {
			return t, true
		}
	}
	return Template{}, false
}
