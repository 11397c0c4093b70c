package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the codec of package abi into a
// temporary folder and compares it with the checked-in abi/wire_gen.go.
func TestGeneratedCodeIsFresh(t *testing.T) {
	out := filepath.Join(t.TempDir(), "wire_gen.go")
	if err := run(filepath.Join("..", ".."), out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "wire_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("abi/wire_gen.go is stale: run `go generate ./abi/...` and commit the result")
	}
}

// TestGenerateIsDeterministic runs the generator twice on the same input.
func TestGenerateIsDeterministic(t *testing.T) {
	a, err := generate(filepath.Join("..", ".."), "wire_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := generate(filepath.Join("..", ".."), "wire_gen.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two runs gave different output")
		}
	}
}

// TestGenerateRefuses checks that the generator refuses, with a message
// naming the type and field, what it cannot encode.
func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"missing tag", "type T struct {\n\tA string `wire:\"1\"`\n\tB string\n}",
			"type T field B: no wire tag; give it the next free field number, e.g. `wire:\"2\"`"},
		{"duplicate number", "type T struct {\n\tA string `wire:\"1\"`\n\tB int `json:\"b\" wire:\"1\"`\n}",
			"type T field B: field number 1 already used by field A"},
		{"number zero", "type T struct {\n\tA string `wire:\"0\"`\n}", "field number must be in 1..536870911"},
		{"number too big", "type T struct {\n\tA string `wire:\"536870912\"`\n}", "field number must be in 1..536870911"},
		{"not a number", "type T struct {\n\tA string `wire:\"one\"`\n}", `wire tag "one"`},
		{"unknown option", "type T struct {\n\tA []byte `wire:\"1,zerocopy\"`\n}", `unknown wire tag option "zerocopy"`},
		{"alias on a string", "type T struct {\n\tA string `wire:\"1,alias\"`\n}", "option alias applies to []byte fields only"},
		{"float", "type T struct {\n\tA float64 `wire:\"1\"`\n}", "type T field A: unsupported type float64"},
		{"uint8", "type T struct {\n\tA uint8 `wire:\"1\"`\n}", "unsupported type uint8"},
		{"int32", "type T struct {\n\tA int32 `wire:\"1\"`\n}", "unsupported type int32"},
		{"int map", "type T struct {\n\tA map[int]string `wire:\"1\"`\n}", "keys must be strings"},
		{"nested slice", "type T struct {\n\tA [][]string `wire:\"1\"`\n}", "unsupported slice type"},
		{"array", "type T struct {\n\tA [4]byte `wire:\"1\"`\n}", "arrays are not supported"},
		{"pointer to string", "type T struct {\n\tA *string `wire:\"1\"`\n}", "only pointers to wire structs"},
		{"other package", "type T struct {\n\tA time.Duration `wire:\"1\"`\n}", "only json.RawMessage"},
		{"embedded", "type U struct{}\ntype T struct {\n\tU\n}", "embedded or grouped fields are not supported"},
		{"grouped", "type T struct {\n\tA, B string `wire:\"1\"`\n}", "embedded or grouped fields are not supported"},
		{"unexported field", "type T struct {\n\ta string `wire:\"1\"`\n}", "unexported fields are not supported"},
		{"named string", "type S string\ntype T struct {\n\tA S `wire:\"1\"`\n}", "unsupported type S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := "package p\n\nimport (\n\t\"encoding/json\"\n\t\"time\"\n)\n\nvar _ json.RawMessage\nvar _ time.Duration\n\n" + tt.src + "\n"
			if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := generate(dir, "wire_gen.go")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestGenerateAcceptsEveryKind generates a codec for a package using every
// supported field type; the result must be valid, formatted Go.
func TestGenerateAcceptsEveryKind(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nimport \"encoding/json\"\n\ntype Code uint32\ntype Level int64\n\n" +
		"type Inner struct {\n\tA string `wire:\"1\"`\n}\n\n" +
		"type T struct {\n" +
		"\tS string `wire:\"1\"`\n\tS2 string `wire:\"2047\"`\n\tB bool `wire:\"2\"`\n\tI int `wire:\"3\"`\n\tI64 int64 `wire:\"5\"`\n" +
		"\tU32 uint32 `wire:\"6\"`\n\tU64 uint64 `wire:\"7\"`\n\tC Code `wire:\"8\"`\n\tL Level `wire:\"9\"`\n" +
		"\tBy []byte `wire:\"10\"`\n\tAl []byte `wire:\"11,alias\"`\n\tR json.RawMessage `wire:\"12\"`\n" +
		"\tSs []string `wire:\"13\"`\n\tSm map[string]string `wire:\"14\"`\n\tSsm map[string][]string `wire:\"15\"`\n" +
		"\tJm map[string]any `wire:\"16\"`\n\tJi map[string]interface{} `wire:\"17\"`\n" +
		"\tM Inner `wire:\"18\"`\n\tP *Inner `wire:\"300\"`\n\tMs []Inner `wire:\"536870911\"`\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := generate(dir, "wire_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"func (m *T) AppendWire(b []byte) ([]byte, error)",
		"func (m *Inner) appendWire(b []byte) []byte", // infallible: no JSON inside
		"func (m *T) appendWire(b []byte) ([]byte, error)",
		"b, off = beginNested(b, 300)",
		"b = append(b, 0xfa, 0x7f)", // field 2047, bytes: a two-byte key
		"m.C = Code(v)",
		"m.L = Level(v)",
		"m.Al, i, err = d.readAlias(j, end, typ)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
}
