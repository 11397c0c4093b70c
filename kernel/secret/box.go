// Package secret encrypts Latch's secrets at rest and generates and checks
// client secrets and other random tokens.
//
// A Box seals values (signing keys, TOTP seeds, upstream client secrets)
// with AES-256-GCM under the master key before they reach the store. The
// master key comes from configuration (LATCH_MASTER_KEY) or, for
// development, from a generated file in the data directory; see
// LoadOrCreateMasterKey.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Sentinel errors of this package. Check them with errors.Is.
var (
	// ErrDecrypt means a sealed value could not be opened: it was altered,
	// truncated, sealed under another master key, sealed with other
	// associated data, or is not in a format this build knows. The causes
	// are deliberately not told apart beyond what the header says.
	ErrDecrypt = errors.New("decrypting sealed value failed")
	// ErrKeyLength means a master key is not MasterKeySize bytes long.
	ErrKeyLength = errors.New("master key must be 32 bytes")
)

// MasterKeySize is the length of a master key in bytes (AES-256).
const MasterKeySize = 32

// Sealed format, version 1. Every value Seal returns is laid out as
//
//	offset  size  field
//	0       1     version, always FormatV1 (0x01)
//	1       4     key id: the first 4 bytes of SHA-256("latch/secret/key-id/v1" || master key)
//	5       12    nonce, random
//	17      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then the tag
//
// The 5-byte header (version and key id) is authenticated too: GCM's
// additional data is header || associatedData. The key id lets a Box that
// knows several master keys (NewBoxWithPrevious) pick the right one, and lets
// Open tell "sealed under another key" from "altered" in its error text.
//
// Example: sealing the 5-byte plaintext "hello" yields 1+4+12+5+16 = 38 bytes
// starting 0x01 followed by the key id.
const (
	// FormatV1 is the version byte of the format above.
	FormatV1 byte = 0x01

	keyIDSize  = 4
	nonceSize  = 12
	headerSize = 1 + keyIDSize
	overhead   = headerSize + nonceSize + 16
)

// Box seals and opens values with AES-256-GCM under a master key. It is
// safe for concurrent use.
//
// Nonces are 96 random bits per Seal. Under one key that keeps the chance of
// a nonce collision below 2^-32 for the first 2^32 seals (NIST SP 800-38D,
// section 8.3), far more than Latch seals in a key's life time.
type Box struct {
	current boxKey
	// byID holds every key the Box can open with, current included.
	byID map[[keyIDSize]byte]cipher.AEAD
}

type boxKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewBox returns a Box that seals and opens under masterKey, which must be
// MasterKeySize (32) bytes.
func NewBox(masterKey []byte) (*Box, error) {
	return NewBoxWithPrevious(masterKey)
}

// NewBoxWithPrevious returns a Box that seals under current and opens values
// sealed under current or any of previous. It supports replacing the master
// key: values sealed under an old key stay readable until they are sealed
// again.
func NewBoxWithPrevious(current []byte, previous ...[]byte) (*Box, error) {
	cur, err := newBoxKey(current)
	if err != nil {
		return nil, fmt.Errorf("creating box: %w", err)
	}
	b := &Box{current: cur, byID: map[[keyIDSize]byte]cipher.AEAD{cur.id: cur.aead}}
	for i, p := range previous {
		k, err := newBoxKey(p)
		if err != nil {
			return nil, fmt.Errorf("creating box: previous key %d: %w", i, err)
		}
		if _, dup := b.byID[k.id]; !dup {
			b.byID[k.id] = k.aead
		}
	}
	return b, nil
}

func newBoxKey(key []byte) (boxKey, error) {
	if len(key) != MasterKeySize {
		return boxKey{}, fmt.Errorf("%w, got %d", ErrKeyLength, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return boxKey{}, fmt.Errorf("creating AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return boxKey{}, fmt.Errorf("creating GCM: %w", err)
	}
	return boxKey{id: keyID(key), aead: aead}, nil
}

func keyID(key []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte("latch/secret/key-id/v1"))
	h.Write(key)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// KeyID returns the hexadecimal id of the key the Box seals under. It
// identifies the master key in logs and diagnostics without revealing it.
func (b *Box) KeyID() string {
	return fmt.Sprintf("%x", b.current.id[:])
}

// Seal encrypts and authenticates plaintext, binding it to associatedData:
// Open succeeds only with the same associated data. Use associated data to
// tie a sealed value to where it is stored (its tenant, record id, column)
// so it cannot be moved elsewhere. The result is in the FormatV1 layout.
func (b *Box) Seal(plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, overhead+len(plaintext))
	out[0] = FormatV1
	copy(out[1:headerSize], b.current.id[:])
	if _, err := rand.Read(out[headerSize : headerSize+nonceSize]); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	nonce := out[headerSize : headerSize+nonceSize]
	ad := additionalData(out[:headerSize], associatedData)
	return b.current.aead.Seal(out, nonce, plaintext, ad), nil
}

// Open authenticates and decrypts a value returned by Seal. Every failure
// wraps ErrDecrypt.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("opening sealed value: too short (%d bytes): %w", len(sealed), ErrDecrypt)
	}
	if sealed[0] != FormatV1 {
		return nil, fmt.Errorf("opening sealed value: unknown format version %d: %w", sealed[0], ErrDecrypt)
	}
	var id [keyIDSize]byte
	copy(id[:], sealed[1:headerSize])
	aead, ok := b.lookup(id)
	if !ok {
		return nil, fmt.Errorf("opening sealed value: sealed under unknown master key %x: %w", id[:], ErrDecrypt)
	}
	nonce := sealed[headerSize : headerSize+nonceSize]
	ad := additionalData(sealed[:headerSize], associatedData)
	plain, err := aead.Open(nil, nonce, sealed[headerSize+nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("opening sealed value: %w", ErrDecrypt)
	}
	return plain, nil
}

// lookup finds the key with the id. Key ids are not secret, but the loop
// compares every id in constant time anyway so the lookup's timing does not
// depend on which key matched.
func (b *Box) lookup(id [keyIDSize]byte) (cipher.AEAD, bool) {
	var found cipher.AEAD
	for kid, aead := range b.byID {
		if subtle.ConstantTimeCompare(kid[:], id[:]) == 1 {
			found = aead
		}
	}
	return found, found != nil
}

func additionalData(header, associatedData []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associatedData))
	ad = append(ad, header...)
	return append(ad, associatedData...)
}
