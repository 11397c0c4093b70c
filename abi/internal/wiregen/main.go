// Command wiregen generates the binary wire codec of package abi
// (abi/wire_gen.go) from the `wire:"N"` struct tags of its types. It is run
// by `go generate ./abi/...` (the directive is in abi/wire.go):
//
//	go run ./internal/wiregen -dir . -o wire_gen.go
//
// Every exported struct type of the package is a wire message, and every
// one of its fields must carry an explicit field number (`wire:"3"`, or
// `wire:"3,alias"` for a []byte field whose decoded value may alias the
// input). Numbers are never derived from field order, so reordering fields
// cannot change the encoding. The output is deterministic (types sorted by
// name, fields by number) and gofmt'd; a test fails when the checked-in file
// is stale.
//
// wiregen reads the package with go/parser and go/ast only: abi and its
// subpackages may import nothing but the standard library (the layout rule
// checked by conformance/layout), which rules out golang.org/x/tools.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	dir := flag.String("dir", ".", "folder of the package to read")
	out := flag.String("o", "wire_gen.go", "output file (relative to -dir unless absolute)")
	flag.Parse()
	if err := run(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "wiregen:", err)
		os.Exit(1)
	}
}

// run generates the codec of the package in dir into out.
func run(dir, out string) error {
	if !filepath.IsAbs(out) {
		out = filepath.Join(dir, out)
	}
	src, err := generate(dir, filepath.Base(out))
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil { //nolint:gosec // a source file, world-readable like the rest of the tree
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// kind is how a field is encoded.
type kind int

const (
	kString     kind = iota // string: length-delimited
	kBool                   // bool: varint 0/1
	kSint                   // int, int64: zigzag varint
	kUint                   // uint32, uint64: varint
	kBytes                  // []byte, json.RawMessage: length-delimited, copied
	kAlias                  // []byte tagged alias: length-delimited, aliasing the input
	kStrings                // []string: repeated length-delimited
	kStringMap              // map[string]string: repeated entry {1: key, 2: value}
	kStringsMap             // map[string][]string: repeated entry {1: key, 2: repeated value}
	kJSONMap                // map[string]any: length-delimited JSON object
	kMessage                // T (a wire struct): length-delimited, left out when empty
	kMessagePtr             // *T: length-delimited, written when not nil
	kMessages               // []T: repeated length-delimited
)

// field is one field of a message.
type field struct {
	name  string // Go field name
	num   uint32 // wire field number
	kind  kind
	base  string // for kSint/kUint: the basic type (int, int64, uint32, uint64)
	named string // for kSint/kUint: the named type when not basic (OpCode), else ""
	elem  string // for kMessage, kMessagePtr, kMessages: the message type

	elemFallible bool // elem's encoding can fail
}

// message is one wire struct type.
type message struct {
	name     string
	fields   []field // by number
	fallible bool    // its encoding can fail (holds a kJSONMap, maybe nested)
}

// generate reads the package in dir (leaving out skip, the output file, and
// test files) and returns the formatted codec source.
func generate(dir, skip string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	pkgName := ""
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || name == skip {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		if pkgName == "" {
			pkgName = f.Name.Name
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("reading %s: no Go files", dir)
	}
	msgs, err := collect(fset, files)
	if err != nil {
		return nil, err
	}
	return emit(pkgName, msgs)
}

// typeDecl is a type declared in the package.
type typeDecl struct {
	spec *ast.TypeSpec
	file *ast.File
}

// collect finds the wire messages of the package.
func collect(fset *token.FileSet, files []*ast.File) ([]*message, error) {
	decls := map[string]typeDecl{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				decls[ts.Name.Name] = typeDecl{spec: ts, file: f}
			}
		}
	}
	var msgs []*message
	byName := map[string]*message{}
	for name, d := range decls {
		st, ok := d.spec.Type.(*ast.StructType)
		if !ok || !ast.IsExported(name) || d.spec.TypeParams != nil {
			continue
		}
		m, err := structMessage(fset, name, st, d.file, decls)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
		byName[name] = m
	}
	slices.SortFunc(msgs, func(a, b *message) int { return strings.Compare(a.name, b.name) })
	// A message is fallible when a field is a JSON map or a fallible
	// message; iterate to a fixed point (cycles included).
	for changed := true; changed; {
		changed = false
		for _, m := range msgs {
			if m.fallible {
				continue
			}
			for _, f := range m.fields {
				if f.kind == kJSONMap || f.elem != "" && byName[f.elem].fallible {
					m.fallible, changed = true, true
					break
				}
			}
		}
	}
	for _, m := range msgs {
		for i, f := range m.fields {
			m.fields[i].elemFallible = f.elem != "" && byName[f.elem].fallible
		}
	}
	return msgs, nil
}

// structMessage reads the fields of one struct type.
func structMessage(fset *token.FileSet, name string, st *ast.StructType, file *ast.File, decls map[string]typeDecl) (*message, error) {
	m := &message{name: name}
	seen := map[uint32]string{}
	for _, af := range st.Fields.List {
		pos := fset.Position(af.Pos())
		if len(af.Names) != 1 {
			return nil, fmt.Errorf("%s: type %s: embedded or grouped fields are not supported; declare one named field per line", pos, name)
		}
		fname := af.Names[0].Name
		where := fmt.Sprintf("%s: type %s field %s", pos, name, fname)
		if !ast.IsExported(fname) {
			return nil, fmt.Errorf("%s: unexported fields are not supported", where)
		}
		tag := ""
		if af.Tag != nil {
			t, err := strconv.Unquote(af.Tag.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: reading tag: %w", where, err)
			}
			tag = lookupTag(t, "wire")
		}
		if tag == "" {
			return nil, fmt.Errorf("%s: no wire tag; give it the next free field number, e.g. `wire:\"%d\"`", where, nextFree(seen))
		}
		numText, opt, _ := strings.Cut(tag, ",")
		n, err := strconv.ParseUint(numText, 10, 32)
		if err != nil || n == 0 || n > 1<<29-1 {
			return nil, fmt.Errorf("%s: wire tag %q: field number must be in 1..536870911", where, tag)
		}
		num := uint32(n)
		if other, dup := seen[num]; dup {
			return nil, fmt.Errorf("%s: field number %d already used by field %s", where, num, other)
		}
		seen[num] = fname
		f, err := classify(af.Type, file, decls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		switch opt {
		case "":
		case "alias":
			if f.kind != kBytes {
				return nil, fmt.Errorf("%s: option alias applies to []byte fields only", where)
			}
			f.kind = kAlias
		default:
			return nil, fmt.Errorf("%s: unknown wire tag option %q", where, opt)
		}
		f.name, f.num = fname, num
		m.fields = append(m.fields, f)
	}
	slices.SortFunc(m.fields, func(a, b field) int { return int(a.num) - int(b.num) })
	return m, nil
}

// lookupTag returns the value of key in a struct tag (reflect.StructTag's
// Get, without importing reflect).
func lookupTag(tag, key string) string {
	for tag != "" {
		tag = strings.TrimLeft(tag, " ")
		i := strings.Index(tag, ":")
		if i <= 0 || i+1 >= len(tag) || tag[i+1] != '"' {
			return ""
		}
		name := tag[:i]
		rest := tag[i+1:]
		j := 1
		for j < len(rest) && rest[j] != '"' {
			if rest[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(rest) {
			return ""
		}
		if name == key {
			v, err := strconv.Unquote(rest[:j+1])
			if err != nil {
				return ""
			}
			return v
		}
		tag = rest[j+1:]
	}
	return ""
}

func nextFree(seen map[uint32]string) uint32 {
	var n uint32 = 1
	for seen[n] != "" {
		n++
	}
	return n
}

var basicSint = map[string]bool{"int": true, "int64": true}
var basicUint = map[string]bool{"uint32": true, "uint64": true}

// classify maps a field's type expression to its encoding.
func classify(expr ast.Expr, file *ast.File, decls map[string]typeDecl) (field, error) {
	switch t := expr.(type) {
	case *ast.Ident:
		switch {
		case t.Name == "string":
			return field{kind: kString}, nil
		case t.Name == "bool":
			return field{kind: kBool}, nil
		case basicSint[t.Name]:
			return field{kind: kSint, base: t.Name}, nil
		case basicUint[t.Name]:
			return field{kind: kUint, base: t.Name}, nil
		}
		d, ok := decls[t.Name]
		if !ok {
			return field{}, fmt.Errorf("unsupported type %s", t.Name)
		}
		switch u := d.spec.Type.(type) {
		case *ast.StructType:
			return field{kind: kMessage, elem: t.Name}, nil
		case *ast.Ident:
			switch {
			case basicSint[u.Name]:
				return field{kind: kSint, base: u.Name, named: t.Name}, nil
			case basicUint[u.Name]:
				return field{kind: kUint, base: u.Name, named: t.Name}, nil
			}
		}
		return field{}, fmt.Errorf("unsupported type %s (a struct, or a named int, int64, uint32 or uint64)", t.Name)
	case *ast.StarExpr:
		if id, ok := t.X.(*ast.Ident); ok {
			if d, ok := decls[id.Name]; ok {
				if _, ok := d.spec.Type.(*ast.StructType); ok {
					return field{kind: kMessagePtr, elem: id.Name}, nil
				}
			}
		}
		return field{}, errors.New("unsupported pointer type (only pointers to wire structs)")
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "json" && t.Sel.Name == "RawMessage" && importsAs(file, "encoding/json", "json") {
			return field{kind: kBytes}, nil
		}
		return field{}, errors.New("unsupported type (of the other packages, only json.RawMessage)")
	case *ast.ArrayType:
		if t.Len != nil {
			return field{}, errors.New("arrays are not supported; use a slice")
		}
		if id, ok := t.Elt.(*ast.Ident); ok {
			switch id.Name {
			case "byte":
				return field{kind: kBytes}, nil
			case "string":
				return field{kind: kStrings}, nil
			}
			if d, ok := decls[id.Name]; ok {
				if _, ok := d.spec.Type.(*ast.StructType); ok {
					return field{kind: kMessages, elem: id.Name}, nil
				}
			}
		}
		return field{}, errors.New("unsupported slice type ([]byte, []string or a slice of wire structs)")
	case *ast.MapType:
		if k, ok := t.Key.(*ast.Ident); !ok || k.Name != "string" {
			return field{}, errors.New("unsupported map type (keys must be strings)")
		}
		switch v := t.Value.(type) {
		case *ast.Ident:
			switch v.Name {
			case "string":
				return field{kind: kStringMap}, nil
			case "any":
				return field{kind: kJSONMap}, nil
			}
		case *ast.InterfaceType:
			if len(v.Methods.List) == 0 {
				return field{kind: kJSONMap}, nil
			}
		case *ast.ArrayType:
			if id, ok := v.Elt.(*ast.Ident); ok && v.Len == nil && id.Name == "string" {
				return field{kind: kStringsMap}, nil
			}
		}
		return field{}, errors.New("unsupported map type (map[string]string, map[string][]string or map[string]any)")
	}
	return field{}, errors.New("unsupported type")
}

// importsAs reports whether file imports path under the name name.
func importsAs(file *ast.File, path, name string) bool {
	for _, imp := range file.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || p != path {
			continue
		}
		if imp.Name == nil {
			return filepath.Base(p) == name
		}
		return imp.Name.Name == name
	}
	return false
}

// keyBytes returns the Go byte literals of a field key.
func keyBytes(num uint32, wireType uint64) string {
	v := uint64(num)<<3 | wireType
	var parts []string
	for v >= 0x80 {
		parts = append(parts, fmt.Sprintf("0x%02x", byte(v)|0x80))
		v >>= 7
	}
	parts = append(parts, fmt.Sprintf("0x%02x", byte(v)))
	return strings.Join(parts, ", ")
}

const (
	wireVarint = 0
	wireBytes  = 2
)

// emit writes the codec of msgs.
func emit(pkg string, msgs []*message) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("// Code generated by wiregen from the wire tags of package %s; DO NOT EDIT.\n", pkg)
	p("// Regenerate with `go generate ./abi/...`. SPEC.md describes the encoding.\n\n")
	p("package %s\n\n", pkg)
	p("// Compile-time guards: every wire type is a Message.\nvar (\n")
	for _, m := range msgs {
		p("\t_ Message = (*%s)(nil)\n", m.name)
	}
	p(")\n")
	for _, m := range msgs {
		emitMessage(p, m)
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting the generated code: %w\n%s", err, b.Bytes())
	}
	return src, nil
}

func emitMessage(p func(string, ...any), m *message) {
	n := m.name
	p("\n// AppendWire appends the wire encoding of m to b (see Message).\n")
	p("func (m *%s) AppendWire(b []byte) ([]byte, error) {\n", n)
	p("\tstart := len(b)\n")
	if m.fallible {
		p("\tb, err := m.appendWire(b)\n\tif err != nil {\n\t\treturn b[:start], encodeErr(err)\n\t}\n")
	} else {
		p("\tb = m.appendWire(b)\n")
	}
	p("\tif err := checkEncodeSize(%q, len(b)-start); err != nil {\n\t\treturn b[:start], err\n\t}\n", n)
	p("\treturn b, nil\n}\n")

	p("\n// UnmarshalWire resets m and decodes the wire encoding b into it (see\n// Message).\n")
	p("func (m *%s) UnmarshalWire(b []byte) error {\n", n)
	p("\t*m = %s{}\n", n)
	p("\tif err := checkDecodeSize(%q, b); err != nil {\n\t\treturn err\n\t}\n", n)
	p("\td := decoder{b: b}\n")
	p("\tif err := m.decodeWire(&d, 0, len(b), 0); err != nil {\n\t\treturn decodeErr(err)\n\t}\n\treturn nil\n}\n")

	// appendWire
	if m.fallible {
		p("\nfunc (m *%s) appendWire(b []byte) ([]byte, error) {\n", n)
	} else {
		p("\nfunc (m *%s) appendWire(b []byte) []byte {\n", n)
	}
	for _, f := range m.fields {
		emitAppendField(p, m, f)
	}
	if m.fallible {
		p("\treturn b, nil\n}\n")
	} else {
		p("\treturn b\n}\n")
	}

	// decodeWire
	p("\nfunc (m *%s) decodeWire(d *decoder, i, end, depth int) error {\n", n)
	p("\tif err := checkDepth(depth); err != nil {\n\t\treturn atField(%q, 0, err)\n\t}\n", n)
	p("\tfor i < end {\n")
	p("\t\t// A one-byte key (fields 1 to 15) is read in place; calls are dear in WASM.\n")
	p("\t\tnum, typ, j := uint32(d.b[i]>>3), d.b[i]&7, i+1\n")
	p("\t\tvar err error\n")
	p("\t\tif d.b[i] >= 0x80 || num == 0 {\n")
	p("\t\t\tif num, typ, j, err = d.readKey(i, end); err != nil {\n\t\t\t\treturn atField(%q, 0, err)\n\t\t\t}\n\t\t}\n", n)
	p("\t\tswitch num {\n")
	for _, f := range m.fields {
		emitDecodeField(p, f)
	}
	p("\t\tdefault:\n\t\t\ti, err = d.skip(j, end, typ)\n\t\t}\n")
	p("\t\tif err != nil {\n\t\t\treturn atField(%q, num, err)\n\t\t}\n\t}\n\treturn nil\n}\n", n)
}

// nestedAppend returns the statement appending the content of message
// expression x (of type elem) to b.
func nestedAppend(p func(string, ...any), m *message, f field, x, indent string, fallible bool) {
	if fallible {
		p("%svar err error\n", indent)
		p("%sif b, err = %s.appendWire(b); err != nil {\n%s\treturn b, atField(%q, %d, err)\n%s}\n", indent, x, indent, m.name, f.num, indent)
	} else {
		p("%sb = %s.appendWire(b)\n", indent, x)
	}
}

func emitAppendField(p func(string, ...any), m *message, f field) {
	x := "m." + f.name
	p("\t// %d: %s\n", f.num, f.name)
	key := func(wt uint64) string { return keyBytes(f.num, wt) }
	switch f.kind {
	case kString:
		p("\tif %s != \"\" {\n\t\tb = append(b, %s)\n\t\tb = appendString(b, %s)\n\t}\n", x, key(wireBytes), x)
	case kBool:
		p("\tif %s {\n\t\tb = append(b, %s, 1)\n\t}\n", x, key(wireVarint))
	case kSint:
		p("\tif %s != 0 {\n\t\tb = append(b, %s)\n\t\tb = appendVarint(b, zigzag(int64(%s)))\n\t}\n", x, key(wireVarint), x)
	case kUint:
		p("\tif %s != 0 {\n\t\tb = append(b, %s)\n\t\tb = appendVarint(b, uint64(%s))\n\t}\n", x, key(wireVarint), x)
	case kBytes, kAlias:
		p("\tif len(%s) != 0 {\n\t\tb = append(b, %s)\n\t\tb = appendBytes(b, %s)\n\t}\n", x, key(wireBytes), x)
	case kStrings:
		p("\tb = appendStrings(b, %d, %s)\n", f.num, x)
	case kStringMap:
		p("\tif len(%s) != 0 {\n\t\tb = appendStringMap(b, %d, %s)\n\t}\n", x, f.num, x)
	case kStringsMap:
		p("\tif len(%s) != 0 {\n\t\tb = appendStringsMap(b, %d, %s)\n\t}\n", x, f.num, x)
	case kJSONMap:
		p("\tif len(%s) != 0 {\n\t\tvar err error\n\t\tif b, err = appendJSONMapField(b, %d, %s); err != nil {\n\t\t\treturn b, atField(%q, %d, err)\n\t\t}\n\t}\n", x, f.num, x, m.name, f.num)
	case kMessagePtr:
		p("\tif %s != nil {\n\t\tvar off int\n\t\tb, off = beginNested(b, %d)\n", x, f.num)
		nestedAppend(p, m, f, x, "\t\t", f.elemFallible)
		p("\t\tb = endNested(b, off)\n\t}\n")
	case kMessage:
		p("\t{\n\t\tmark := len(b)\n\t\tvar off int\n\t\tb, off = beginNested(b, %d)\n", f.num)
		nestedAppend(p, m, f, x, "\t\t", f.elemFallible)
		p("\t\tif len(b) == off+1 {\n\t\t\tb = b[:mark] // an empty message is left out\n\t\t} else {\n\t\t\tb = endNested(b, off)\n\t\t}\n\t}\n")
	case kMessages:
		p("\tfor i := range %s {\n\t\tvar off int\n\t\tb, off = beginNested(b, %d)\n", x, f.num)
		nestedAppend(p, m, f, x+"[i]", "\t\t", f.elemFallible)
		p("\t\tb = endNested(b, off)\n\t}\n")
	}
}

func emitDecodeField(p func(string, ...any), f field) {
	x := "m." + f.name
	p("\t\tcase %d: // %s\n", f.num, f.name)
	switch f.kind {
	case kString:
		// The common case, a string shorter than 128 bytes cut from the
		// shared string, is done in place; calls are dear in WASM.
		p("\t\t\tif typ == wireBytes && j < end && d.b[j] < 0x80 && int(d.b[j]) < end-j && len(d.s) == len(d.b) {\n")
		p("\t\t\t\ti = j + 1 + int(d.b[j])\n\t\t\t\t%s = d.s[j+1 : i]\n", x)
		p("\t\t\t} else {\n\t\t\t\t%s, i, err = d.readString(j, end, typ)\n\t\t\t}\n", x)
	case kBool:
		p("\t\t\t%s, i, err = d.readBool(j, end, typ)\n", x)
	case kSint, kUint:
		fn := map[string]string{"int": "readInt", "int64": "readSint64", "uint32": "readUint32", "uint64": "readUvarint"}[f.base]
		if f.named == "" {
			p("\t\t\t%s, i, err = d.%s(j, end, typ)\n", x, fn)
		} else {
			p("\t\t\tvar v %s\n\t\t\tv, i, err = d.%s(j, end, typ)\n\t\t\t%s = %s(v)\n", f.base, fn, x, f.named)
		}
	case kBytes:
		p("\t\t\t%s, i, err = d.readBytes(j, end, typ)\n", x)
	case kAlias:
		p("\t\t\t%s, i, err = d.readAlias(j, end, typ)\n", x)
	case kStrings:
		// Repeated fields and maps are sized from the run of their
		// elements on the wire (decoder.run) when their first element is
		// met: one allocation instead of one per doubling. The key of
		// that element spans [i, j).
		p("\t\t\tif %s == nil {\n\t\t\t\t%s = make([]string, 0, d.run(i, j, end))\n\t\t\t}\n", x, x)
		p("\t\t\ti, err = d.readStrings(&%s, j, end, typ)\n", x)
	case kStringMap:
		p("\t\t\tif %s == nil {\n\t\t\t\t%s = make(map[string]string, d.run(i, j, end))\n\t\t\t}\n", x, x)
		p("\t\t\ti, err = d.readStringMap(&%s, j, end, typ)\n", x)
	case kStringsMap:
		p("\t\t\tif %s == nil {\n\t\t\t\t%s = d.makeStringsMap(i, j, end)\n\t\t\t}\n", x, x)
		p("\t\t\ti, err = d.readStringsMap(&%s, j, end, typ)\n", x)
	case kJSONMap:
		p("\t\t\ti, err = d.readJSONMap(&%s, j, end, typ)\n", x)
	case kMessagePtr:
		p("\t\t\tvar s int\n\t\t\tif s, i, err = d.readSpan(j, end, typ); err == nil {\n")
		p("\t\t\t\t%s = new(%s)\n\t\t\t\terr = %s.decodeWire(d, s, i, depth+1)\n\t\t\t}\n", x, f.elem, x)
	case kMessage:
		p("\t\t\tvar s int\n\t\t\tif s, i, err = d.readSpan(j, end, typ); err == nil {\n")
		p("\t\t\t\t%s = %s{}\n\t\t\t\terr = %s.decodeWire(d, s, i, depth+1)\n\t\t\t}\n", x, f.elem, x)
	case kMessages:
		p("\t\t\tif %s == nil {\n\t\t\t\t%s = make([]%s, 0, d.run(i, j, end))\n\t\t\t}\n", x, x, f.elem)
		p("\t\t\tvar s int\n\t\t\tif len(%s) >= MaxElements {\n\t\t\t\terr = tooMany()\n", x)
		p("\t\t\t} else if s, i, err = d.readSpan(j, end, typ); err == nil {\n")
		p("\t\t\t\t%s = append(%s, %s{})\n\t\t\t\terr = %s[len(%s)-1].decodeWire(d, s, i, depth+1)\n\t\t\t}\n", x, x, f.elem, x, x)
	}
}
