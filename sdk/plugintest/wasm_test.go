//go:build !wasip1

package plugintest_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/latchid/latch/abi"
	"github.com/latchid/latch/sdk/plugintest"
)

// TestExampleBuildsForWASM builds testdata/example, a guest using
// sdk/plugin, sdk/authn and sdk/host, with the command plugin authors use:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// and checks the module's exports and imports: every export of the calling
// convention, and of latch_v1 only host_call (the example uses the
// key-value store, never guest.Log, guest.Now or guest.Random, so the
// linker must drop those imports, or the host would ask for capabilities
// the module does not declare). Running the module under the real WASM
// host is the conformance kit's job (conformance/abi).
func TestExampleBuildsForWASM(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the WASM build in -short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping the WASM build: the go tool is not on PATH")
	}
	wasm, err := plugintest.BuildWASM("testdata/example", filepath.Join(t.TempDir(), "example.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	imports, exports, err := wasmImportsExports(wasm)
	if err != nil {
		t.Fatalf("reading the module: %v", err)
	}
	for _, want := range []string{abi.ExportABIMarker, abi.ExportBuffer, abi.ExportHandle, abi.ExportDescribe, abi.ExportMemory, abi.ExportInitialize} {
		if !slices.Contains(exports, want) {
			t.Errorf("the module does not export %s (exports: %v)", want, exports)
		}
	}
	var latch []string
	for _, imp := range imports {
		if imp.module == abi.HostModule {
			latch = append(latch, imp.name)
		} else if imp.module != "wasi_snapshot_preview1" {
			t.Errorf("the module imports %s.%s, which the host does not provide", imp.module, imp.name)
		}
	}
	if want := []string{abi.ImportHostCall}; !slices.Equal(latch, want) {
		t.Errorf("the module imports %s.%v, want only %v", abi.HostModule, latch, want)
	}
}

type wasmImport struct{ module, name string }

// wasmImportsExports reads the import and export sections of a WebAssembly
// binary module (WebAssembly Core Specification 2.0, section 5.5).
func wasmImportsExports(b []byte) (imports []wasmImport, exports []string, err error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || !bytes.Equal(b[4:8], []byte{1, 0, 0, 0}) {
		return nil, nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	r := &wasmReader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sec := &wasmReader{b: r.bytes(int(r.u32()))}
		switch id {
		case 2: // import section
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				imp := wasmImport{module: sec.name(), name: sec.name()}
				switch sec.byte() {
				case 0: // func: type index
					sec.u32()
				case 1: // table: reference type, limits
					sec.byte()
					sec.limits()
				case 2: // memory: limits
					sec.limits()
				case 3: // global: value type, mutability
					sec.byte()
					sec.byte()
				default:
					sec.err = errors.New("unknown import kind")
				}
				imports = append(imports, imp)
			}
		case 7: // export section
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				exports = append(exports, sec.name())
				sec.byte() // kind
				sec.u32()  // index
			}
		}
		if sec.err != nil {
			return nil, nil, sec.err
		}
	}
	return imports, exports, r.err
}

// wasmReader reads the WebAssembly binary encoding; the first error
// sticks and makes every later read return zero.
type wasmReader struct {
	b   []byte
	err error
}

func (r *wasmReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail()
	return 0
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *wasmReader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *wasmReader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.u32()
		r.u32()
		return
	}
	r.u32()
}

func (r *wasmReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated or malformed module")
	}
}
