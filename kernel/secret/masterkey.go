package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MasterKeyFile is the name of the development master key file in the data
// directory.
const MasterKeyFile = "master.key"

// MasterKeyEnv is the environment variable operators set the master key with
// in production.
const MasterKeyEnv = "LATCH_MASTER_KEY"

// DecodeMasterKey decodes a master key given as base64 (standard or URL
// alphabet, with or without padding) and checks that it is MasterKeySize
// bytes. Errors never contain the key.
func DecodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err = enc.Strict().DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		// The decoder's error quotes an offset, never the input; still, do
		// not wrap it, so that no future decoder can leak the value here.
		return nil, errors.New("decoding master key: not valid base64")
	}
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("decoding master key: %w, got %d", ErrKeyLength, len(key))
	}
	return key, nil
}

// EncodeMasterKey returns key as padded standard base64, the form written to
// the master key file and accepted by LATCH_MASTER_KEY.
func EncodeMasterKey(key []byte) string {
	return base64.StdEncoding.EncodeToString(key)
}

// LoadOrCreateMasterKey returns the master key Latch seals secrets under.
//
//  1. When fromConfig is not empty it is decoded with DecodeMasterKey (this
//     is the production path: LATCH_MASTER_KEY or master_key in latch.yaml).
//  2. Otherwise dataDir/master.key is read. It must be readable by its owner
//     only (mode 0600 or stricter, not checked on Windows) and hold one
//     base64 key; anything else is an error naming the file.
//  3. When the file does not exist a new random key is written there with
//     mode 0600 and a warning is logged: such a key is meant for development,
//     and losing the file loses every secret sealed under it.
//
// log may be nil, in which case slog.Default() is used. The key is never
// logged.
func LoadOrCreateMasterKey(dataDir string, fromConfig string, log *slog.Logger) ([]byte, error) {
	if log == nil {
		log = slog.Default()
	}
	if fromConfig != "" {
		key, err := DecodeMasterKey(fromConfig)
		if err != nil {
			return nil, fmt.Errorf("loading master key from configuration (master_key / %s): %w", MasterKeyEnv, err)
		}
		return key, nil
	}
	if dataDir == "" {
		return nil, errors.New("loading master key: no master key configured and no data directory")
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	key, err := readMasterKeyFile(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err = createMasterKeyFile(dataDir, path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it between our read and our create.
		return readMasterKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	log.Warn("generated a new master key for development; back this file up, and in production set "+MasterKeyEnv+" instead",
		slog.String("file", path), slog.String("key_id", mustKeyID(key)))
	return key, nil
}

func mustKeyID(key []byte) string {
	id := keyID(key)
	return fmt.Sprintf("%x", id[:])
}

// readMasterKeyFile reads the key file at path, which LoadOrCreateMasterKey
// builds from the operator's own data directory.
func readMasterKeyFile(path string) (key []byte, err error) {
	f, err := os.Open(path) //nolint:gosec // G304: the path is the operator's configured data directory joined with MasterKeyFile
	if err != nil {
		return nil, fmt.Errorf("reading master key file %q: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			clear(key)
			key, err = nil, fmt.Errorf("reading master key file %q: %w", path, cerr)
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading master key file %q: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("reading master key file %q: not a regular file", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("reading master key file %q: permissions %04o allow group or others access; run chmod 600 %q",
			path, info.Mode().Perm(), path)
	}
	// A key file is ~45 bytes; refuse to read anything large.
	const maxFile = 1024
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading master key file %q: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("reading master key file %q: file too large for a master key", path)
	}
	key, err = DecodeMasterKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("reading master key file %q: %w", path, err)
	}
	return key, nil
}

// createMasterKeyFile writes a new key with O_EXCL so two processes starting
// at once cannot both create one; the loser gets fs.ErrExist.
func createMasterKeyFile(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %q: %w", dataDir, err)
	}
	key, err := randomBytes(MasterKeySize)
	if err != nil {
		return nil, fmt.Errorf("generating master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the path is the operator's configured data directory joined with MasterKeyFile
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("creating master key file %q: %w", path, err)
	}
	_, werr := f.WriteString(EncodeMasterKey(key) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("writing master key file %q: %w", path, werr)
	}
	return key, nil
}
