// Package password hashes and verifies user passwords with argon2id (RFC
// 9106), stored as PHC strings such as
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
//
// The parameters travel with each hash, so they can be raised at any time:
// Verify reports needsRehash for hashes made with other parameters, and the
// caller stores a fresh hash after the next successful login.
package password

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/argon2"
)

// Sentinel errors of this package. Check them with errors.Is.
var (
	// ErrTooLong means the password is longer than MaxLength bytes.
	ErrTooLong = errors.New("password too long")
	// ErrMalformedHash means an encoded hash is not an argon2id PHC string
	// this package can verify (other variant or version, bad base64,
	// missing fields, parameters out of range).
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrInvalidParams means Params are out of the accepted range.
	ErrInvalidParams = errors.New("invalid argon2id parameters")
)

// MaxLength is the longest password, in bytes, that Hash and Verify accept.
// argon2id's cost does not grow with the password length, but hashing a
// multi-megabyte password still copies and pre-hashes it on every attempt;
// a bound also keeps request bodies and logs of failures small. 1024 bytes
// is far beyond any passphrase a person types or a manager generates.
const MaxLength = 1024

// Limits on parameters, both for configuration and for hashes read back from
// the store. A hash is outside input when users are imported, so its
// parameters must not be able to make one Verify allocate gigabytes or run
// for minutes, nor crash the argon2 implementation (which panics on p=0).
const (
	// MaxMemory is the largest memory parameter accepted, in KiB (1 GiB).
	MaxMemory = 1 << 20
	// MaxIterations is the largest time parameter accepted.
	MaxIterations = 64
	// MinSaltLength is the shortest salt accepted (RFC 9106 section 3.1
	// recommends 16 bytes; 8 is its hard floor).
	MinSaltLength = 8
	// MaxSaltLength is the longest salt accepted.
	MaxSaltLength = 64
	// MinKeyLength is the shortest derived key accepted.
	MinKeyLength = 16
	// MaxKeyLength is the longest derived key accepted.
	MaxKeyLength = 128
)

// Params are argon2id's cost parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the time cost (passes over memory).
	Iterations uint32
	// Parallelism is the number of lanes (threads).
	Parallelism uint8
	// SaltLength is the length of the random salt in bytes.
	SaltLength uint32
	// KeyLength is the length of the derived hash in bytes.
	KeyLength uint32
}

// DefaultParams are OWASP's recommended argon2id parameters: m=19456 KiB
// (19 MiB), t=2, p=1, from the OWASP Password Storage Cheat Sheet
// (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id),
// with a 16-byte salt and a 32-byte hash as RFC 9106 section 4 suggests.
// They cost 19 MiB and tens of milliseconds per hash (see
// BenchmarkPasswordHash); raise Memory first when there is room.
var DefaultParams = Params{
	Memory:      19456,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// Validate reports whether p is within the accepted ranges. It checks that
// the parameters are usable and bounded, not that they are strong: strength
// is the operator's trade-off against login latency.
func (p Params) Validate() error {
	var errs []error
	if p.Parallelism < 1 {
		errs = append(errs, errors.New("parallelism must be at least 1"))
	}
	if p.Memory < 8*uint32(p.Parallelism) {
		errs = append(errs, fmt.Errorf("memory must be at least 8 KiB per lane (%d KiB), got %d", 8*uint32(p.Parallelism), p.Memory))
	}
	if p.Memory > MaxMemory {
		errs = append(errs, fmt.Errorf("memory must be at most %d KiB, got %d", MaxMemory, p.Memory))
	}
	if p.Iterations < 1 || p.Iterations > MaxIterations {
		errs = append(errs, fmt.Errorf("iterations must be between 1 and %d, got %d", MaxIterations, p.Iterations))
	}
	if p.SaltLength < MinSaltLength || p.SaltLength > MaxSaltLength {
		errs = append(errs, fmt.Errorf("salt length must be between %d and %d, got %d", MinSaltLength, MaxSaltLength, p.SaltLength))
	}
	if p.KeyLength < MinKeyLength || p.KeyLength > MaxKeyLength {
		errs = append(errs, fmt.Errorf("key length must be between %d and %d, got %d", MinKeyLength, MaxKeyLength, p.KeyLength))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidParams, errors.Join(errs...))
	}
	return nil
}

// Hasher hashes passwords with fixed parameters and verifies hashes made
// with any parameters in range. It is safe for concurrent use.
type Hasher struct {
	params Params
}

// NewHasher returns a Hasher that hashes with p. Invalid parameters are not
// refused here but by every Hash call; check them up front with
// Params.Validate (the config package does).
func NewHasher(p Params) *Hasher {
	return &Hasher{params: p}
}

// Params returns the parameters h hashes with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under h's parameters and a new
// random salt.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > MaxLength {
		return "", fmt.Errorf("hashing password: %w (%d bytes, limit %d)", ErrTooLong, len(password), MaxLength)
	}
	if err := h.params.Validate(); err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	p := argon2id.Params(h.params)
	encoded, err := argon2id.CreateHash(password, &p)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return encoded, nil
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash (with any parameters in range). needsRehash is true when the password
// matched but encoded was made with parameters other than h's; the caller
// should then store h.Hash(password). A password over MaxLength is
// ErrTooLong and a bad encoding is ErrMalformedHash; a wrong password is
// (false, false, nil).
func (h *Hasher) Verify(password, encoded string) (ok bool, needsRehash bool, err error) {
	if len(password) > MaxLength {
		return false, false, fmt.Errorf("verifying password: %w (%d bytes, limit %d)", ErrTooLong, len(password), MaxLength)
	}
	params, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verifying password: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, params.Iterations, params.Memory, params.Parallelism, params.KeyLength)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, params != h.params, nil
}

// SimulateVerify spends the time and memory of one Verify with h's
// parameters and discards the result. Call it when the account being logged
// into does not exist, so that response times do not reveal which usernames
// exist.
func (h *Hasher) SimulateVerify(password string) {
	if len(password) > MaxLength {
		return
	}
	p := h.params
	if p.Validate() != nil {
		p = DefaultParams
	}
	salt := make([]byte, p.SaltLength)
	_ = argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
}

// decode parses a PHC string and checks its parameters are in range before
// any work is done with them.
func decode(encoded string) (Params, []byte, []byte, error) {
	if len(encoded) > 512 {
		return Params{}, nil, nil, fmt.Errorf("%w: %d bytes is longer than any valid hash", ErrMalformedHash, len(encoded))
	}
	ap, salt, key, err := argon2id.DecodeHash(encoded)
	if err != nil {
		// The library's parse errors (fmt.Sscanf, base64) carry only
		// offsets and formats, never the hash; keep them for diagnosis.
		return Params{}, nil, nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	p := Params(*ap)
	if err := p.Validate(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

var defaultHasher = NewHasher(DefaultParams)

// Hash returns the PHC string of password under DefaultParams.
func Hash(password string) (string, error) {
	return defaultHasher.Hash(password)
}

// Verify reports whether password matches encoded, a PHC string made with
// any parameters in range. Use a Hasher to learn whether a rehash is due.
func Verify(password, encoded string) (bool, error) {
	ok, _, err := defaultHasher.Verify(password, encoded)
	return ok, err
}
