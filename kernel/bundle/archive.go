package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// Archive paths besides the manifest.
const (
	SumsFile      = "SHA256SUMS"
	SignatureFile = "latch-bundle.sig"
)

// Limits of Read.
const (
	// MaxArchiveSize bounds the compressed archive and, separately, the
	// sum of its files' sizes.
	MaxArchiveSize = 64 << 20
	// MaxFileSize bounds one file.
	MaxFileSize = 48 << 20
	// MaxFiles bounds the number of files.
	MaxFiles = 64
	// maxPath bounds a path.
	maxPath = 200
	// maxStream bounds the decompressed tar stream: the files and their
	// headers, padding and extended headers.
	maxStream = MaxArchiveSize + 4<<20
)

// ErrInvalidArchive is wrapped by the errors of Read about the archive's
// structure and digests.
var ErrInvalidArchive = errors.New("invalid bundle archive")

// Bundle is a parsed archive.
type Bundle struct {
	// Manifest is the parsed manifest.
	Manifest Manifest
	// Files maps every path of the archive to its content, the manifest,
	// SHA256SUMS and the signature included.
	Files map[string][]byte
	// Sums is SHA256SUMS as it was read: the signed bytes.
	Sums []byte
	// Signature is the parsed signature; nil when unsigned.
	Signature *Signature
}

// Digest is the hex SHA-256 of SHA256SUMS: it names the bundle's content
// (signature excluded).
func (b *Bundle) Digest() string {
	d := sha256.Sum256(b.Sums)
	return hex.EncodeToString(d[:])
}

// Binary returns the native binary for platform and its SHA-256.
func (b *Bundle) Binary(platform string) (data, sum []byte, ok bool) {
	n, ok := b.Manifest.NativeFor(platform)
	if !ok {
		return nil, nil, false
	}
	sum, err := hex.DecodeString(n.SHA256)
	if err != nil {
		return nil, nil, false
	}
	return b.Files[n.Path], sum, true
}

// Module returns the WebAssembly module, or nil when there is none.
func (b *Bundle) Module() []byte {
	if b.Manifest.Modules.WASM == "" {
		return nil
	}
	return b.Files[b.Manifest.Modules.WASM]
}

// checkPath accepts a clean relative slash path of printable ASCII
// without "." or ".." segments.
func checkPath(p string) error {
	switch {
	case p == "" || len(p) > maxPath:
		return fmt.Errorf("path %q: want 1 to %d bytes", p, maxPath)
	case strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("path %q: must be clean and relative, inside the archive", p)
	}
	for _, r := range p {
		if r <= ' ' || r > '~' || r == '\\' || r == ':' {
			return fmt.Errorf("path %q: only printable ASCII without spaces, '\\' or ':'", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("path %q: must not have . or .. segments", p)
		}
	}
	return nil
}

// Read parses a bundle archive strictly (see the package documentation).
// It does not check the signature: call Verify.
func Read(archive []byte) (*Bundle, error) {
	if len(archive) > MaxArchiveSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidArchive, len(archive), MaxArchiveSize)
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip: %w", ErrInvalidArchive, err)
	}
	zr.Multistream(false)
	// The decompressed stream is capped as a whole, so that no header
	// trick (folders claiming sizes, endless headers) inflates it.
	tr := tar.NewReader(io.LimitReader(zr, maxStream))
	files := map[string][]byte{}
	var total int64
	entries := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading tar: %w", ErrInvalidArchive, err)
		}
		if entries++; entries > 2*MaxFiles {
			return nil, fmt.Errorf("%w: more than %d entries", ErrInvalidArchive, 2*MaxFiles)
		}
		if h.Typeflag == tar.TypeDir {
			if err := checkPath(strings.TrimSuffix(h.Name, "/")); err != nil {
				return nil, fmt.Errorf("%w: directory: %w", ErrInvalidArchive, err)
			}
			if h.Size != 0 {
				return nil, fmt.Errorf("%w: directory %q has a size", ErrInvalidArchive, h.Name)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: %q is not a regular file (links, devices and the like are refused)", ErrInvalidArchive, h.Name)
		}
		if err := checkPath(h.Name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidArchive, err)
		}
		if _, dup := files[h.Name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalidArchive, h.Name)
		}
		if len(files) >= MaxFiles {
			return nil, fmt.Errorf("%w: more than %d files", ErrInvalidArchive, MaxFiles)
		}
		if h.Size < 0 || h.Size > MaxFileSize || total+h.Size > MaxArchiveSize {
			return nil, fmt.Errorf("%w: %q is too large (%d bytes; at most %d a file, %d in all)", ErrInvalidArchive, h.Name, h.Size, MaxFileSize, MaxArchiveSize)
		}
		total += h.Size
		data, err := io.ReadAll(io.LimitReader(tr, h.Size+1))
		if err != nil {
			return nil, fmt.Errorf("%w: reading %q: %w", ErrInvalidArchive, h.Name, err)
		}
		if int64(len(data)) != h.Size {
			return nil, fmt.Errorf("%w: %q is truncated", ErrInvalidArchive, h.Name)
		}
		files[h.Name] = data
	}
	return parse(files)
}

// parse checks the files of an archive.
func parse(files map[string][]byte) (*Bundle, error) {
	sums, ok := files[SumsFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrInvalidArchive, SumsFile)
	}
	digests, err := parseSums(sums)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		if name == SumsFile || name == SignatureFile {
			continue
		}
		want, ok := digests[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q is not listed in %s", ErrInvalidArchive, name, SumsFile)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			return nil, fmt.Errorf("%w: %q does not match its digest in %s (the archive was altered)", ErrInvalidArchive, name, SumsFile)
		}
	}
	for name := range digests {
		if _, ok := files[name]; !ok {
			return nil, fmt.Errorf("%w: %s lists %q, which the archive lacks", ErrInvalidArchive, SumsFile, name)
		}
	}
	raw, ok := files[ManifestFile]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrInvalidArchive, ManifestFile)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files() {
		if _, ok := files[f]; !ok {
			return nil, fmt.Errorf("%w: the manifest names %q, which the archive lacks", ErrInvalidArchive, f)
		}
	}
	for _, n := range m.Modules.Native {
		if n.SHA256 == "" {
			return nil, fmt.Errorf("%w: modules.native %s (%s) has no sha256 (pack the bundle with latch bundle pack)", ErrInvalidArchive, n.Platform(), n.Path)
		}
		if n.SHA256 != digests[n.Path] {
			return nil, fmt.Errorf("%w: modules.native %s: %q does not match its sha256 in the manifest", ErrInvalidArchive, n.Platform(), n.Path)
		}
	}
	b := &Bundle{Manifest: m, Files: files, Sums: sums}
	if raw, ok := files[SignatureFile]; ok {
		sig, err := ParseSignature(raw)
		if err != nil {
			return nil, err
		}
		b.Signature = &sig
	}
	return b, nil
}

// parseSums parses SHA256SUMS: "<64 hex>  <path>" lines, sorted, unique,
// never listing itself or the signature.
func parseSums(data []byte) (map[string]string, error) {
	out := map[string]string{}
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 512), 512)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || strings.ToLower(sum) != sum {
			return nil, fmt.Errorf("%w: %s line %d: want \"<lower-case hex sha-256>  <path>\"", ErrInvalidArchive, SumsFile, n)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %w", ErrInvalidArchive, SumsFile, n, err)
		}
		if err := checkPath(name); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %w", ErrInvalidArchive, SumsFile, n, err)
		}
		if name == SumsFile || name == SignatureFile || name <= prev {
			return nil, fmt.Errorf("%w: %s line %d: %q is out of order, repeated or not to be listed", ErrInvalidArchive, SumsFile, n, name)
		}
		prev = name
		out[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidArchive, SumsFile, err)
	}
	return out, nil
}

// Pack builds an unsigned archive from a manifest and its module files
// (path in the archive -> content). The manifest is checked first.
func Pack(m Manifest, files map[string][]byte) ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	// The binaries' digests go into the signed manifest.
	m.Modules.Native = slices.Clone(m.Modules.Native)
	for i, n := range m.Modules.Native {
		data, ok := files[n.Path]
		if !ok {
			return nil, fmt.Errorf("packing: the manifest names %q, which was not given", n.Path)
		}
		d := sha256.Sum256(data)
		if sum := hex.EncodeToString(d[:]); n.SHA256 == "" {
			m.Modules.Native[i].SHA256 = sum
		} else if n.SHA256 != sum {
			return nil, fmt.Errorf("packing: %q does not match the sha256 the manifest gives it", n.Path)
		}
	}
	raw, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	all := make(map[string][]byte, len(files)+2)
	for name, data := range files {
		if err := checkPath(name); err != nil {
			return nil, fmt.Errorf("packing: %w", err)
		}
		if name == ManifestFile || name == SumsFile || name == SignatureFile {
			return nil, fmt.Errorf("packing: %q is written by the packer", name)
		}
		all[name] = data
	}
	for _, f := range m.Files() {
		if _, ok := all[f]; !ok {
			return nil, fmt.Errorf("packing: the manifest names %q, which was not given", f)
		}
	}
	all[ManifestFile] = raw
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	slices.Sort(names)
	var sums bytes.Buffer
	for _, name := range names {
		d := sha256.Sum256(all[name])
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(d[:]), name)
	}
	all[SumsFile] = sums.Bytes()
	return write(all)
}

// write writes files as a tar.gz, in path order, with fixed times and
// modes so that the same input packs to the same bytes.
func write(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range names {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %q: %w", name, err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			return nil, fmt.Errorf("writing %q: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("writing the archive: %w", err)
	}
	return buf.Bytes(), nil
}
