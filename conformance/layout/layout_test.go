package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// module is the import path of the Latch module (go.mod).
const module = "github.com/latchid/latch"

// pkg is the part of `go list -json` output the rules look at.
type pkg struct {
	ImportPath   string
	Imports      []string // imports of the non-test files
	TestImports  []string // imports of in-package _test.go files
	XTestImports []string // imports of package foo_test files
	Error        *struct{ Err string }
}

// violation is one forbidden import found by a rule.
type violation struct {
	Pkg  string // importing package (module-relative path)
	Dep  string // imported path
	Rule string // rule letter, see rules
	Test bool   // found through a test import
}

func (v violation) String() string {
	if v.Rule == "f" {
		return fmt.Sprintf("top level holds forbidden folder %s (rule f: %s)", v.Dep, ruleText[v.Rule])
	}
	via := ""
	if v.Test {
		via = " (test)"
	}
	return fmt.Sprintf("%s%s imports forbidden dep %s (rule %s: %s)", v.Pkg, via, v.Dep, v.Rule, ruleText[v.Rule])
}

// ruleText says what each rule forbids, in the words of the architecture map.
var ruleText = map[string]string{
	"a": "kernel/ knows no protocol, web framework or vendor library and never imports builtin/ or cmd/",
	"b": "database drivers are imported only by the store adapters kernel/store/sqlite and kernel/store/postgres",
	"c": "sdk/ and plugins/ depend on abi/ only, never on kernel/ or builtin/",
	"d": "abi/ is a leaf: standard library only",
	"e": "builtin/ never imports cmd/",
	"f": "the top level holds only the fixed folders",
}

// kernelBanned lists the import path prefixes no kernel package may import
// (rule a).
var kernelBanned = []string{
	"github.com/gofiber",
	"github.com/ory/fosite",
	"github.com/crewjam/saml",
	"github.com/valyala/fasthttp",
	module + "/builtin",
	module + "/cmd",
}

// dbDrivers lists SQL driver import path prefixes (rule b). Beyond the two
// drivers Latch uses, the common alternatives are listed so that switching
// driver does not slip past the rule.
var dbDrivers = []string{
	"github.com/mattn/go-sqlite3",
	"github.com/jackc/pgx",
	"github.com/jackc/pgconn",
	"github.com/lib/pq",
	"modernc.org/sqlite",
}

// storeAdapters are the only kernel packages (with their subpackages) that
// may import a database driver (rule b).
var storeAdapters = []string{
	module + "/kernel/store/sqlite",
	module + "/kernel/store/postgres",
}

// allowedTop is the fixed set of top-level folders (rule f).
var allowedTop = []string{
	"abi", "kernel", "builtin", "plugins", "sdk", "conformance", "cmd",
	"docs", "deploy", ".ci", ".git", ".github",
}

// under reports whether path is prefix itself or lies below it, comparing
// whole path elements ("kernel/store" is under "kernel", "kernelx" is not).
func under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func underAny(path string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(path, p) })
}

// checkImports applies rules a to e to pkgs. std reports whether an import
// path is a standard library package.
func checkImports(pkgs []pkg, std func(string) bool) []violation {
	var out []violation
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		type imp struct {
			path string
			test bool
		}
		var imps []imp
		for _, i := range p.Imports {
			imps = append(imps, imp{i, false})
		}
		for _, i := range slices.Concat(p.TestImports, p.XTestImports) {
			imps = append(imps, imp{i, true})
		}
		add := func(dep, rule string, test bool) {
			out = append(out, violation{Pkg: rel, Dep: dep, Rule: rule, Test: test})
		}
		for _, i := range imps {
			switch {
			case under(p.ImportPath, module+"/kernel"):
				if underAny(i.path, kernelBanned) {
					add(i.path, "a", i.test)
				}
				if underAny(i.path, dbDrivers) && !underAny(p.ImportPath, storeAdapters) {
					add(i.path, "b", i.test)
				}
			case under(p.ImportPath, module+"/sdk"), under(p.ImportPath, module+"/plugins"):
				if under(i.path, module+"/kernel") || under(i.path, module+"/builtin") {
					add(i.path, "c", i.test)
				}
			case under(p.ImportPath, module+"/abi"):
				// Subpackages of abi may use each other; anything else
				// must come with Go.
				if !std(i.path) && !under(i.path, module+"/abi") {
					add(i.path, "d", i.test)
				}
			case under(p.ImportPath, module+"/builtin"):
				if under(i.path, module+"/cmd") {
					add(i.path, "e", i.test)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// checkTop applies rule f to the folder names found at the top of the
// repository. ignored reports whether git ignores a folder (build output
// such as bin/ and data/).
func checkTop(dirs []string, ignored func(string) bool) []violation {
	var out []violation
	for _, d := range dirs {
		if slices.Contains(allowedTop, d) || ignored(d) {
			continue
		}
		out = append(out, violation{Pkg: ".", Dep: d + "/", Rule: "f"})
	}
	return out
}

// moduleRoot walks up from the working directory to the folder holding
// go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getting working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("finding go.mod: none in any parent folder")
		}
		dir = parent
	}
}

// goList runs `go list -e -json` with args in the module root and decodes
// the stream of package objects. -e keeps packages that fail to load (a
// package mid-edit must not hide the others' imports).
func goList(t *testing.T, root string, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// stdPackages returns the set of standard library import paths.
func stdPackages(t *testing.T, root string) func(string) bool {
	t.Helper()
	cmd := exec.Command("go", "list", "std")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running go list std: %v", err)
	}
	set := map[string]bool{}
	for _, line := range strings.Fields(string(out)) {
		set[line] = true
	}
	return func(path string) bool { return set[path] }
}

// gitIgnored returns a func that reports whether git ignores a top-level
// folder. Outside a git work tree it knows only the build output named in
// .gitignore (bin/, data/).
func gitIgnored(t *testing.T, root string) func(string) bool {
	t.Helper()
	probe := exec.Command("git", "rev-parse", "--is-inside-work-tree")
	probe.Dir = root
	if out, err := probe.Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Logf("not in a git work tree (%v): treating only bin/ and data/ as ignored", err)
		return func(name string) bool { return name == "bin" || name == "data" }
	}
	return func(name string) bool {
		cmd := exec.Command("git", "check-ignore", "-q", name+"/")
		cmd.Dir = root
		// Exit 0: ignored; 1: not ignored; anything else: an error, which
		// counts as not ignored so the folder is reported.
		return cmd.Run() == nil
	}
}

func TestImportRules(t *testing.T) {
	root := moduleRoot(t)
	pkgs := goList(t, root, "./...")
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	for _, p := range pkgs {
		if p.Error != nil {
			// Loading errors (a package mid-edit) belong to the build; the
			// imports go list could still read are checked below.
			t.Logf("note: %s: %s", p.ImportPath, p.Error.Err)
		}
	}
	std := stdPackages(t, root)
	for _, v := range checkImports(pkgs, std) {
		t.Error(v)
	}
}

func TestTopLevelFolders(t *testing.T) {
	root := moduleRoot(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("reading %s: %v", root, err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	for _, v := range checkTop(dirs, gitIgnored(t, root)) {
		t.Error(v)
	}
}

// TestCheckerCatchesViolations proves each rule fires: every case is a
// synthetic package list with exactly the violations listed in want.
func TestCheckerCatchesViolations(t *testing.T) {
	std := func(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }
	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name string
		pkg  pkg
		want []string // "rule:dep" for each expected violation
	}{
		{
			name: "clean packages pass",
			pkg: pkg{ImportPath: m("kernel/registry"), Imports: []string{"context", m("abi"), "github.com/google/uuid"},
				TestImports: []string{"testing"}},
		},
		{
			name: "kernel imports fiber",
			pkg:  pkg{ImportPath: m("kernel/pipeline"), Imports: []string{"github.com/gofiber/fiber/v2"}},
			want: []string{"a:github.com/gofiber/fiber/v2"},
		},
		{
			name: "kernel imports fosite, saml and fasthttp",
			pkg: pkg{ImportPath: m("kernel/internal/x"), Imports: []string{
				"github.com/ory/fosite/handler/oauth2", "github.com/crewjam/saml", "github.com/valyala/fasthttp",
			}},
			want: []string{"a:github.com/crewjam/saml", "a:github.com/ory/fosite/handler/oauth2", "a:github.com/valyala/fasthttp"},
		},
		{
			name: "kernel test imports builtin",
			pkg:  pkg{ImportPath: m("kernel"), XTestImports: []string{m("builtin/oidc")}},
			want: []string{"a:" + m("builtin/oidc")},
		},
		{
			name: "kernel imports cmd",
			pkg:  pkg{ImportPath: m("kernel/config"), Imports: []string{m("cmd/latch/internal/cli")}},
			want: []string{"a:" + m("cmd/latch/internal/cli")},
		},
		{
			name: "kernel outside store adapters imports a driver",
			pkg:  pkg{ImportPath: m("kernel/store"), Imports: []string{"github.com/jackc/pgx/v5"}},
			want: []string{"b:github.com/jackc/pgx/v5"},
		},
		{
			name: "store test kit imports sqlite driver in tests",
			pkg:  pkg{ImportPath: m("kernel/store/storetest"), TestImports: []string{"github.com/mattn/go-sqlite3"}},
			want: []string{"b:github.com/mattn/go-sqlite3"},
		},
		{
			name: "store adapters may import drivers",
			pkg: pkg{ImportPath: m("kernel/store/postgres/internal/migrate"), Imports: []string{"github.com/jackc/pgx/v5/pgxpool"},
				XTestImports: []string{m("kernel/store/sqlite"), "github.com/mattn/go-sqlite3"}},
		},
		{
			name: "sqlite adapter may import its driver",
			pkg:  pkg{ImportPath: m("kernel/store/sqlite"), Imports: []string{"github.com/mattn/go-sqlite3"}},
		},
		{
			name: "sdk imports kernel",
			pkg:  pkg{ImportPath: m("sdk/plugintest"), Imports: []string{m("kernel/extension")}},
			want: []string{"c:" + m("kernel/extension")},
		},
		{
			name: "plugin imports builtin in a test",
			pkg:  pkg{ImportPath: m("plugins/examples/hello"), TestImports: []string{m("builtin/authn/password")}},
			want: []string{"c:" + m("builtin/authn/password")},
		},
		{
			name: "sdk may import abi",
			pkg:  pkg{ImportPath: m("sdk/guest"), Imports: []string{m("abi"), "unsafe"}},
		},
		{
			name: "abi imports a third-party module",
			pkg:  pkg{ImportPath: m("abi/wire"), Imports: []string{"encoding/binary", "github.com/google/uuid", m("abi")}},
			want: []string{"d:github.com/google/uuid"},
		},
		{
			name: "abi imports kernel",
			pkg:  pkg{ImportPath: m("abi"), XTestImports: []string{m("kernel")}},
			want: []string{"d:" + m("kernel")},
		},
		{
			name: "builtin imports cmd",
			pkg:  pkg{ImportPath: m("builtin/server"), Imports: []string{m("kernel"), m("cmd/latch")}},
			want: []string{"e:" + m("cmd/latch")},
		},
		{
			name: "builtin may import kernel and fiber",
			pkg:  pkg{ImportPath: m("builtin/admin"), Imports: []string{m("kernel/store"), "github.com/gofiber/fiber/v2"}},
		},
		{
			name: "prefix match is by path element",
			pkg:  pkg{ImportPath: m("kernelx"), Imports: []string{"github.com/gofiber/fiber/v2", "github.com/mattn/go-sqlite3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range checkImports([]pkg{tt.pkg}, std) {
				got = append(got, v.Rule+":"+v.Dep)
				if !strings.Contains(v.String(), "imports forbidden dep "+v.Dep+" (rule "+v.Rule) {
					t.Errorf("report %q does not name the dep and rule", v)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("checkImports found %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("top level", func(t *testing.T) {
		ignored := func(name string) bool { return name == "bin" }
		got := checkTop([]string{"abi", "kernel", "bin", "tools", ".github", "vendor"}, ignored)
		var names []string
		for _, v := range got {
			names = append(names, v.Dep)
			if v.Rule != "f" {
				t.Errorf("%v: rule %q, want f", v, v.Rule)
			}
		}
		if want := []string{"tools/", "vendor/"}; !slices.Equal(names, want) {
			t.Errorf("checkTop reported %q, want %q", names, want)
		}
	})
}
