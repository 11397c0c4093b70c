package login

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/gofiber/fiber/v2"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/latch.css
var defaultCSS []byte

// pages are the parsed page templates, one per page, each with the layout.
type pages map[string]*template.Template

// pageNames are the pages, each a templates/<name>.html that defines
// "body", rendered inside templates/layout.html that defines "layout".
var pageNames = []string{"login", "consent", "logout", "info", "device", "frontchannel"}

// parsePages parses every page with the layout. A theme folder (Deps.ThemeDir)
// may hold templates/<name>.html files, layout.html included, that replace
// the embedded ones of the same name; the others stay the embedded ones.
func parsePages(themeDir string) (pages, error) {
	read := func(name string) (string, error) {
		file := "templates/" + name + ".html"
		if themeDir != "" {
			b, err := os.ReadFile(filepath.Join(themeDir, filepath.FromSlash(file))) //nolint:gosec // G304: the operator's theme folder, and a fixed page name.
			switch {
			case err == nil:
				return string(b), nil
			case !errors.Is(err, fs.ErrNotExist):
				return "", fmt.Errorf("reading theme template %s: %w", name, err)
			}
		}
		b, err := templateFS.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading template %s: %w", name, err)
		}
		return string(b), nil
	}
	layout, err := read("layout")
	if err != nil {
		return nil, err
	}
	ps := pages{}
	for _, name := range pageNames {
		body, err := read(name)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout.html").Parse(layout)
		if err != nil {
			return nil, fmt.Errorf("parsing layout: %w", err)
		}
		if _, err := t.New(name + ".html").Parse(body); err != nil {
			return nil, fmt.Errorf("parsing page %s: %w", name, err)
		}
		if t.Lookup("layout") == nil || t.Lookup("body") == nil {
			return nil, fmt.Errorf("parsing page %s: the layout must define \"layout\" and the page \"body\"", name)
		}
		ps[name] = t
	}
	return ps, nil
}

// page is what every page shows.
type page struct {
	Lang, Brand, Title, Message, Error, AssetBase string
}

// Field is one input of the login form.
type field struct {
	Name, Type, InputType, Label, Value, Autocomplete string
	Required, Autofocus                               bool
}

type option struct{ URL, Label string }

type loginPage struct {
	page
	// Image is a data: URL an authenticator shows (a QR code).
	Image                                    template.URL
	ImageAlt                                 string
	Action, Flow, CSRF, Submit, OptionsLabel string
	Fields                                   []field
	Options                                  []option
}

// Hidden is a hidden form field of a page another front door renders
// (consent, logout).
type Hidden struct{ Name, Value string }

type consentPage struct {
	page
	Intro, Action, CSRF, Remember, Allow, Deny string
	Scopes                                     []string
	Hidden                                     []Hidden
}

type logoutPage struct {
	page
	Action, CSRF, Submit string
	Hidden               []Hidden
}

type infoPage struct {
	page
	Link, LinkLabel string
}

// render writes the page name with data and status. Pages are never
// cached, never framed and load nothing from elsewhere.
func (s *Service) render(c *fiber.Ctx, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}
	setPageHeaders(c)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(buf.Bytes())
}

// setPageHeaders forbids caching, framing (clickjacking) and any content
// from elsewhere on a page.
func setPageHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action *; frame-ancestors 'none'; base-uri 'none'")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
}

// css serves the stylesheet of the pages.
func (s *Service) css(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Status(http.StatusOK).Send(s.stylesheet)
}
