package guest

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

// TestDirectivesMatchNames checks that the //go:wasmexport and
// //go:wasmimport directives of abi_wasip1.go spell the names of the
// calling convention, which directives cannot take from constants.
func TestDirectivesMatchNames(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "abi_wasip1.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var exports, imports []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Doc == nil {
			continue
		}
		for _, c := range fn.Doc.List {
			fields := strings.Fields(c.Text)
			switch {
			case len(fields) == 2 && fields[0] == "//go:wasmexport":
				exports = append(exports, fields[1])
			case len(fields) == 3 && fields[0] == "//go:wasmimport":
				imports = append(imports, fields[1]+"."+fields[2])
			}
		}
	}
	slices.Sort(exports)
	slices.Sort(imports)
	wantExports := []string{exportMarker, exportBuffer, exportDescribe, exportHandle}
	wantImports := []string{hostModule + "." + hostCall, hostModule + "." + hostLog, hostModule + "." + hostNow, hostModule + "." + hostRandom}
	slices.Sort(wantExports)
	slices.Sort(wantImports)
	if !slices.Equal(exports, wantExports) {
		t.Errorf("exports %v, want %v", exports, wantExports)
	}
	if !slices.Equal(imports, wantImports) {
		t.Errorf("imports %v, want %v", imports, wantImports)
	}
}

func TestGrow(t *testing.T) {
	tests := []struct {
		name     string
		cap      int
		size     uint32
		wantCap  int
		wantSame bool
		wantOK   bool
	}{
		{"first buffer is never empty", 0, 0, 64, false, true},
		{"fits", 100, 80, 100, true, true},
		{"doubles", 100, 150, 200, false, true},
		{"grows to the size", 100, 1000, 1000, false, true},
		{"too large", 100, maxBuffer + 1, 100, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, 0, tt.cap)
			got, ok := grow(b, tt.size)
			if ok != tt.wantOK || cap(got) != tt.wantCap || len(got) < int(min(tt.size, maxBuffer)) && ok {
				t.Errorf("grow(cap %d, %d) = len %d cap %d, %v", tt.cap, tt.size, len(got), cap(got), ok)
			}
			if same := cap(b) > 0 && cap(got) > 0 && &got[:1][0] == &b[:1][0]; same != tt.wantSame {
				t.Errorf("reused the storage: %v, want %v", same, tt.wantSame)
			}
		})
	}
}

func TestPack(t *testing.T) {
	tests := []struct {
		ptr, n uint32
		packed uint64
	}{
		{0x0001_0000, 200, 0x0001_0000_0000_00c8},
		{0x0011_a0f0, 0x0001_2345, 0x0011_a0f0_0001_2345},
		{0x1234, 0, 0}, // an empty message packs to 0 whatever its pointer
	}
	for _, tt := range tests {
		if got := pack(tt.ptr, tt.n); got != tt.packed {
			t.Errorf("pack(%#x, %d) = %#x, want %#x", tt.ptr, tt.n, got, tt.packed)
		}
	}
	if p, n := unpack(0x0011_a0f0_0001_2345); p != 0x0011_a0f0 || n != 0x0001_2345 {
		t.Errorf("unpack = %#x, %#x", p, n)
	}
}

func TestWithin(t *testing.T) {
	buf := []byte("0123456789")
	const base = 1000
	tests := []struct {
		ptr, n uint32
		want   string
		ok     bool
	}{
		{1000, 10, "0123456789", true},
		{1003, 2, "34", true},
		{1010, 0, "", true},
		{999, 2, "", false},
		{1009, 2, "", false},
		{0xffff_ffff, 2, "", false},
	}
	for _, tt := range tests {
		got, ok := within(buf, base, tt.ptr, tt.n)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("within(%d, %d) = %q, %v; want %q, %v", tt.ptr, tt.n, got, ok, tt.want, tt.ok)
		}
	}
}

// resetState forgets the buffers between tests.
func resetState(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		bufs, last, handling, current = [2][]byte{}, 0, false, 0
	})
}

// TestBufferRoles walks the buffers through the host's moves: a call, a
// host call answered during it, a later call written into the buffer last
// returned (without asking), and a host call during that one.
func TestBufferRoles(t *testing.T) {
	resetState(t)
	b1, _ := nextBuffer(8)
	copy(b1, "call one")
	call, ok := beginCall(8)
	if !ok || string(call) != "call one" {
		t.Fatalf("beginCall = %q, %v", call, ok)
	}
	answer, _ := nextBuffer(6) // host_call answer during the call
	if &answer[0] == &call[0] {
		t.Fatal("the answer buffer is the call's buffer")
	}
	copy(answer, "answer")
	if string(call) != "call one" {
		t.Errorf("the answer overwrote the call: %q", call)
	}
	endCall()

	// The host reuses the buffer last returned, the answer buffer, for the
	// next call.
	copy(answer, "two")
	call, ok = beginCall(3)
	if !ok || string(call) != "two" || &call[0] != &answer[0] {
		t.Fatalf("beginCall = %q, %v; want the call in the buffer last returned", call, ok)
	}
	answer2, _ := nextBuffer(4)
	if &answer2[0] == &call[0] {
		t.Error("the second answer buffer is the call's buffer")
	}
	endCall()

	if _, ok := beginCall(1 << 20); ok {
		t.Error("beginCall accepted a call longer than the buffer")
	}
}

func TestOutsideGuestPanics(t *testing.T) {
	calls := map[string]func(){
		"Log":      func() { Log(LevelInfo, "x") },
		"Now":      func() { Now() },
		"Random":   func() { Random(make([]byte, 1)) },
		"HostCall": func() { _, _ = HostCall(nil) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, ErrNotInGuest) {
					t.Errorf("%s panicked with %v, want ErrNotInGuest", name, err)
				}
			}()
			call()
		})
	}
}

func TestHandleRegisters(t *testing.T) {
	t.Cleanup(func() { handler, describer = nil, nil })
	Handle(bytes.ToUpper)
	Describe(func() []byte { return []byte("d") })
	if got := handler([]byte("abc")); string(got) != "ABC" {
		t.Errorf("handler = %q", got)
	}
	if got := describer(); string(got) != "d" {
		t.Errorf("describer = %q", got)
	}
}
