package secret

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// DeriveKey returns a 32-byte key for one purpose, derived from the master
// key with HKDF-SHA256 (RFC 5869) and the info "latch/" + purpose. Keys of
// different purposes are independent, so a key used to MAC authorization
// codes reveals nothing about the master key or about any other derived
// key. The same master key and purpose always give the same key, on every
// node of a cluster.
func DeriveKey(masterKey []byte, purpose string) ([]byte, error) {
	if len(masterKey) != MasterKeySize {
		return nil, ErrKeyLength
	}
	if purpose == "" {
		return nil, fmt.Errorf("deriving key: purpose is required")
	}
	key, err := hkdf.Key(sha256.New, masterKey, nil, "latch/"+purpose, MasterKeySize)
	if err != nil {
		return nil, fmt.Errorf("deriving %s key: %w", purpose, err)
	}
	return key, nil
}
