package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Signature errors, matched with errors.Is.
var (
	// ErrUnsigned: the bundle carries no signature and unsigned bundles
	// are not allowed.
	ErrUnsigned = errors.New("bundle is not signed")
	// ErrBadSignature: the signature does not verify, or its key is not
	// trusted.
	ErrBadSignature = errors.New("bad bundle signature")
)

// publicKeyPrefix starts a public key in its text form.
const publicKeyPrefix = "ed25519:"

// Signature is latch-bundle.sig.
type Signature struct {
	// Algorithm is "ed25519".
	Algorithm string `json:"algorithm"`
	// KeyID is KeyID of the signer's public key.
	KeyID string `json:"key_id"`
	// Value is the base64 (standard, padded) ed25519 signature of
	// SHA256SUMS.
	Value string `json:"signature"`
}

// ParseSignature decodes latch-bundle.sig strictly.
func ParseSignature(data []byte) (Signature, error) {
	var s Signature
	if len(data) > 1024 {
		return s, fmt.Errorf("%w: %s is too large", ErrBadSignature, SignatureFile)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: %s: %w", ErrBadSignature, SignatureFile, err)
	}
	if s.Algorithm != "ed25519" {
		return s, fmt.Errorf("%w: algorithm %q (only ed25519 is accepted)", ErrBadSignature, s.Algorithm)
	}
	if raw, err := base64.StdEncoding.DecodeString(s.Value); err != nil || len(raw) != ed25519.SignatureSize {
		return s, fmt.Errorf("%w: the signature is not %d bytes of base64", ErrBadSignature, ed25519.SignatureSize)
	}
	return s, nil
}

// KeyID names a public key: the hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	d := sha256.Sum256(pub)
	return hex.EncodeToString(d[:8])
}

// GenerateKey returns a new signer key pair: the private key as PEM
// (PKCS #8) and the public key in its text form ("ed25519:<base64>"), the
// form the bundles.trusted_keys configuration takes.
func GenerateKey() (privatePEM []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generating an ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), FormatPublicKey(pub), nil
}

// FormatPublicKey returns the text form of a public key.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form of a public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key: want %q and the base64 of 32 bytes", publicKeyPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: want %q and the base64 of 32 bytes", publicKeyPrefix)
	}
	return ed25519.PublicKey(raw), nil
}

// ParsePrivateKey parses a PEM PKCS #8 ed25519 private key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("private key: want a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key: a %T, want ed25519", k)
	}
	return priv, nil
}

// Sign reads an archive, signs its SHA256SUMS with priv and returns the
// archive with the signature added (replacing any).
func Sign(archive []byte, priv ed25519.PrivateKey) ([]byte, error) {
	b, err := Read(archive)
	if err != nil {
		return nil, err
	}
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("signing: not an ed25519 key")
	}
	sig, err := json.Marshal(Signature{
		Algorithm: "ed25519",
		KeyID:     KeyID(pub),
		Value:     base64.StdEncoding.EncodeToString(ed25519.Sign(priv, b.Sums)),
	})
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	b.Files[SignatureFile] = append(sig, '\n')
	return write(b.Files)
}

// Trust is an installation's trust in bundle signers.
type Trust struct {
	// Keys are the trusted signers' public keys.
	Keys []ed25519.PublicKey
	// AllowUnsigned accepts bundles without a signature (development only).
	// A bundle that is signed must still verify against Keys.
	AllowUnsigned bool
}

// NewTrust parses public keys in their text form.
func NewTrust(keys []string, allowUnsigned bool) (Trust, error) {
	t := Trust{AllowUnsigned: allowUnsigned}
	for i, k := range keys {
		pub, err := ParsePublicKey(k)
		if err != nil {
			return Trust{}, fmt.Errorf("trusted key %d: %w", i, err)
		}
		t.Keys = append(t.Keys, pub)
	}
	return t, nil
}

// Verify checks b's signature: it must be made by one of the trusted keys
// over SHA256SUMS. An unsigned bundle is ErrUnsigned unless AllowUnsigned;
// every other failure is ErrBadSignature. It returns the signer's KeyID
// ("" for an accepted unsigned bundle).
func (t Trust) Verify(b *Bundle) (string, error) {
	if b.Signature == nil {
		if t.AllowUnsigned {
			return "", nil
		}
		return "", fmt.Errorf("%w: bundle %s %s carries no %s, and bundles.allow_unsigned is off", ErrUnsigned, b.Manifest.Name, b.Manifest.Version, SignatureFile)
	}
	sig, err := base64.StdEncoding.DecodeString(b.Signature.Value)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	for _, k := range t.Keys {
		if KeyID(k) == b.Signature.KeyID {
			if ed25519.Verify(k, b.Sums, sig) {
				return b.Signature.KeyID, nil
			}
			return "", fmt.Errorf("%w: bundle %s %s: the signature by key %s does not verify (the archive was altered or signed by another key)", ErrBadSignature, b.Manifest.Name, b.Manifest.Version, b.Signature.KeyID)
		}
	}
	return "", fmt.Errorf("%w: bundle %s %s is signed by key %s, which is not in bundles.trusted_keys", ErrBadSignature, b.Manifest.Name, b.Manifest.Version, b.Signature.KeyID)
}

// Open reads an archive and verifies it against t.
func (t Trust) Open(archive []byte) (*Bundle, string, error) {
	b, err := Read(archive)
	if err != nil {
		return nil, "", err
	}
	signer, err := t.Verify(b)
	if err != nil {
		return nil, "", err
	}
	return b, signer, nil
}
