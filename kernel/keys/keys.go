// Package keys manages the asymmetric keys each tenant signs tokens with:
// generation, rotation with an overlap during which retired keys stay
// published, the public JWK Set (RFC 7517 section 5), and in-memory signers
// built on go-jose.
//
// Keys live in the store (store.SigningKeys). Their private halves are
// sealed with a secret.Box, bound to the tenant, key id and algorithm, so a
// sealed key copied to another row does not open.
//
// A key moves through the states of the store package:
//
//	(PrepareNext) next ──Rotate──▶ active ──Rotate──▶ retiring ──Purge after Overlap──▶ deleted
//
// Rotate generates the new key when no next key was prepared.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchid/latch/kernel/secret"
	"github.com/latchid/latch/kernel/store"
)

// Sentinel errors of this package. Check them with errors.Is.
var (
	// ErrUnsupportedAlgorithm means an algorithm other than ES256, RS256 or
	// EdDSA was asked for.
	ErrUnsupportedAlgorithm = errors.New("unsupported signing algorithm")
	// ErrNoActiveKey means the tenant has no active key of the algorithm;
	// EnsureKeys or Rotate creates one.
	ErrNoActiveKey = errors.New("no active signing key")
	// ErrCorruptKey means a stored key does not match its record (wrong key
	// type for its algorithm, unparsable key material).
	ErrCorruptKey = errors.New("corrupt signing key")
)

// Supported JWS algorithms (RFC 7518 section 3.1, RFC 8037 section 3.1).
const (
	// ES256 is ECDSA on P-256 with SHA-256: short keys and signatures, fast
	// to generate. The default.
	ES256 = "ES256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256 and RSABits-bit keys, for
	// relying parties that support nothing else.
	RS256 = "RS256"
	// EdDSA is Ed25519 (RFC 8037).
	EdDSA = "EdDSA"
)

// Defaults of Options.
const (
	// DefaultAlgorithm is used when Options.DefaultAlgorithm is empty.
	DefaultAlgorithm = ES256
	// DefaultOverlap is how long a retired key stays published when
	// Options.Overlap is zero. It must exceed the longest lifetime of a
	// token signed by the key (ID tokens, access tokens, logout tokens).
	DefaultOverlap = 24 * time.Hour
	// DefaultActiveCacheTTL is how long the id of a tenant's active key is
	// cached when Options.ActiveCacheTTL is zero.
	DefaultActiveCacheTTL = time.Minute
	// RSABits is the size of generated RSA keys (NIST SP 800-57 part 1,
	// 112-bit security through 2030).
	RSABits = 2048
)

// SupportedAlgorithms returns the algorithms keys can be generated for,
// sorted.
func SupportedAlgorithms() []string {
	return []string{ES256, EdDSA, RS256}
}

// CheckAlgorithm returns an error wrapping ErrUnsupportedAlgorithm and
// naming alg when alg is not one of SupportedAlgorithms.
func CheckAlgorithm(alg string) error {
	if slices.Contains(SupportedAlgorithms(), alg) {
		return nil
	}
	return fmt.Errorf("%w %q (supported: %s)", ErrUnsupportedAlgorithm, alg, strings.Join(SupportedAlgorithms(), ", "))
}

// Options configure a Manager. The zero value is usable.
type Options struct {
	// DefaultAlgorithm is the algorithm of keys made by EnsureKeys and used
	// when an empty algorithm is passed. Default ES256.
	DefaultAlgorithm string
	// Overlap is how long a retired key stays published in the JWKS after
	// Rotate, so tokens it signed still verify. Zero or negative means
	// DefaultOverlap (24h).
	Overlap time.Duration
	// ActiveCacheTTL is how long the Manager remembers which key is active
	// for a tenant and algorithm before asking the store again. Rotations
	// through this Manager take effect at once; a rotation made by another
	// node is seen when this node is told (Forget, on the cluster's change
	// notification) or at the latest within this time; meanwhile this node
	// keeps signing with the previous key, which stays published for
	// Overlap, so tokens stay verifiable as long as ActiveCacheTTL is
	// shorter than Overlap.
	// Zero means DefaultActiveCacheTTL (1m); negative disables the cache.
	ActiveCacheTTL time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives rotation and purge events. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.DefaultAlgorithm == "" {
		o.DefaultAlgorithm = DefaultAlgorithm
	}
	if o.Overlap <= 0 {
		o.Overlap = DefaultOverlap
	}
	if o.ActiveCacheTTL == 0 {
		o.ActiveCacheTTL = DefaultActiveCacheTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Manager creates, rotates and serves the signing keys of every tenant. It
// caches decrypted signers by key id, so signing does not decrypt per call.
// It is safe for concurrent use.
type Manager struct {
	st   store.SigningKeys
	box  *secret.Box
	opts Options

	// writeMu serialises EnsureKeys, PrepareNext and Rotate in this process
	// so concurrent first requests of a tenant do not each create a key.
	// Across processes the store's atomic RotateSigningKeys keeps one
	// active key per tenant and algorithm.
	writeMu sync.Mutex

	mu      sync.RWMutex
	signers map[keyRef]*Signer
	active  map[algRef]activeEntry
}

type keyRef struct{ tenantID, kid string }

type algRef struct{ tenantID, alg string }

type activeEntry struct {
	kid     string
	fetched time.Time
}

// NewManager returns a Manager over st that seals private keys with box. An
// unsupported opts.DefaultAlgorithm is reported by the first call that
// needs it.
func NewManager(st store.SigningKeys, box *secret.Box, opts Options) *Manager {
	return &Manager{
		st:      st,
		box:     box,
		opts:    opts.withDefaults(),
		signers: make(map[keyRef]*Signer),
		active:  make(map[algRef]activeEntry),
	}
}

func (m *Manager) resolveAlg(alg string) (string, error) {
	if alg == "" {
		alg = m.opts.DefaultAlgorithm
	}
	if err := CheckAlgorithm(alg); err != nil {
		return "", err
	}
	return alg, nil
}

// EnsureKeys makes sure the tenant has an active key of the default
// algorithm, creating one when it has none. It is idempotent.
func (m *Manager) EnsureKeys(ctx context.Context, tenantID string) error {
	return m.EnsureAlgorithm(ctx, tenantID, "")
}

// EnsureAlgorithm makes sure the tenant has an active key of alg ("" is the
// default algorithm): when it has none, a prepared next key of alg is
// promoted, or else a new key is created. It is idempotent.
func (m *Manager) EnsureAlgorithm(ctx context.Context, tenantID, alg string) error {
	alg, err := m.resolveAlg(alg)
	if err != nil {
		return fmt.Errorf("ensuring signing key of tenant %q: %w", tenantID, err)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	recs, err := m.st.ListSigningKeys(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("ensuring %s signing key of tenant %q: listing keys: %w", alg, tenantID, err)
	}
	if _, ok := findActive(recs, alg); ok {
		return nil
	}
	// Several nodes starting on an empty database race to create the
	// first key: the losers see a conflict on the one-active-key index,
	// or PostgreSQL picks one as a deadlock victim. Whenever an attempt
	// fails, a key another node made active is as good; otherwise try
	// again.
	for attempt := range 3 {
		if _, err = m.rotateLocked(ctx, tenantID, alg, recs); err == nil {
			return nil
		}
		var lerr error
		if recs, lerr = m.st.ListSigningKeys(ctx, tenantID); lerr != nil {
			break
		}
		if _, ok := findActive(recs, alg); ok {
			return nil
		}
		if attempt < 2 {
			time.Sleep(time.Duration(10*(attempt+1)) * time.Millisecond)
		}
	}
	return fmt.Errorf("ensuring %s signing key of tenant %q: %w", alg, tenantID, err)
}

// PrepareNext creates a key of alg ("" is the default algorithm) in the
// next state: published in the JWKS but not signing. Preparing a key a
// while (longer than relying parties cache the JWKS) before Rotate lets
// every relying party know the new key before the first token it signs.
func (m *Manager) PrepareNext(ctx context.Context, tenantID, alg string) (kid string, err error) {
	alg, err = m.resolveAlg(alg)
	if err != nil {
		return "", fmt.Errorf("preparing signing key of tenant %q: %w", tenantID, err)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	rec, err := m.createNext(ctx, tenantID, alg)
	if err != nil {
		return "", fmt.Errorf("preparing %s signing key of tenant %q: %w", alg, tenantID, err)
	}
	m.opts.Logger.InfoContext(ctx, "prepared next signing key",
		slog.String("tenant_id", tenantID), slog.String("alg", alg), slog.String("kid", rec.ID))
	return rec.ID, nil
}

// Rotate makes a new key of alg ("" is the default algorithm) the tenant's
// active key and moves the previously active key of alg to retiring, where
// it stays published until now+Overlap. The new key is the oldest prepared
// next key of alg, or a freshly generated one. It returns the new key's id.
func (m *Manager) Rotate(ctx context.Context, tenantID, alg string) (kid string, err error) {
	alg, err = m.resolveAlg(alg)
	if err != nil {
		return "", fmt.Errorf("rotating signing key of tenant %q: %w", tenantID, err)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	recs, err := m.st.ListSigningKeys(ctx, tenantID)
	if err != nil {
		return "", fmt.Errorf("rotating %s signing key of tenant %q: listing keys: %w", alg, tenantID, err)
	}
	kid, err = m.rotateLocked(ctx, tenantID, alg, recs)
	if err != nil {
		return "", fmt.Errorf("rotating %s signing key of tenant %q: %w", alg, tenantID, err)
	}
	return kid, nil
}

// rotateLocked promotes the oldest next key of alg in recs, or a new one.
// The caller holds writeMu.
func (m *Manager) rotateLocked(ctx context.Context, tenantID, alg string, recs []store.SigningKey) (string, error) {
	var next *store.SigningKey
	for i := range recs { // newest first: the last match is the oldest
		if recs[i].State == store.KeyNext && recs[i].Algorithm == alg {
			next = &recs[i]
		}
	}
	if next == nil {
		rec, err := m.createNext(ctx, tenantID, alg)
		if err != nil {
			return "", err
		}
		next = &rec
	}
	previous, hadPrevious := findActive(recs, alg)
	retireAt := m.opts.Now().Add(m.opts.Overlap)
	if err := m.st.RotateSigningKeys(ctx, tenantID, next.ID, retireAt); err != nil {
		return "", fmt.Errorf("activating key %q: %w", next.ID, err)
	}

	m.mu.Lock()
	delete(m.active, algRef{tenantID, alg})
	if hadPrevious {
		delete(m.signers, keyRef{tenantID, previous.ID})
	}
	m.mu.Unlock()

	attrs := []any{slog.String("tenant_id", tenantID), slog.String("alg", alg), slog.String("kid", next.ID)}
	if hadPrevious {
		attrs = append(attrs, slog.String("retired_kid", previous.ID), slog.Time("retired_until", retireAt))
	}
	m.opts.Logger.InfoContext(ctx, "rotated signing key", attrs...)
	return next.ID, nil
}

// createNext generates a key pair and stores it in the next state.
func (m *Manager) createNext(ctx context.Context, tenantID, alg string) (store.SigningKey, error) {
	priv, err := generate(alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid := store.NewID()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encoding private key: %w", err)
	}
	ad, err := sealAD(tenantID, kid, alg)
	if err != nil {
		clear(der)
		return store.SigningKey{}, fmt.Errorf("sealing private key: %w", err)
	}
	sealed, err := m.box.Seal(der, ad)
	clear(der)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("sealing private key: %w", err)
	}
	pub, err := json.Marshal(publicJWK(priv, kid, alg))
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encoding public key: %w", err)
	}
	rec := store.SigningKey{
		ID:            kid,
		TenantID:      tenantID,
		Algorithm:     alg,
		State:         store.KeyNext,
		PrivateSealed: sealed,
		PublicJWK:     pub,
		CreatedAt:     m.opts.Now(),
	}
	if err := m.st.CreateSigningKey(ctx, rec); err != nil {
		return store.SigningKey{}, fmt.Errorf("storing key %q: %w", kid, err)
	}
	return rec, nil
}

// Signer returns a signer over the tenant's active key of alg ("" is the
// default algorithm). It is ErrNoActiveKey when there is none. The signer is
// cached; call Signer per token rather than keeping it, so rotations are
// picked up.
func (m *Manager) Signer(ctx context.Context, tenantID, alg string) (*Signer, error) {
	alg, err := m.resolveAlg(alg)
	if err != nil {
		return nil, fmt.Errorf("finding signing key of tenant %q: %w", tenantID, err)
	}
	now := m.opts.Now()
	ar := algRef{tenantID, alg}

	if m.opts.ActiveCacheTTL > 0 {
		m.mu.RLock()
		e, ok := m.active[ar]
		var s *Signer
		if ok && now.Sub(e.fetched) < m.opts.ActiveCacheTTL {
			s = m.signers[keyRef{tenantID, e.kid}]
		}
		m.mu.RUnlock()
		if s != nil {
			return s, nil
		}
	}

	recs, err := m.st.ListSigningKeys(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("finding %s signing key of tenant %q: listing keys: %w", alg, tenantID, err)
	}
	rec, ok := findActive(recs, alg)
	if !ok {
		return nil, fmt.Errorf("finding %s signing key of tenant %q: %w", alg, tenantID, ErrNoActiveKey)
	}
	s, err := m.signerFor(rec)
	if err != nil {
		return nil, fmt.Errorf("finding %s signing key of tenant %q: %w", alg, tenantID, err)
	}
	if m.opts.ActiveCacheTTL > 0 {
		m.mu.Lock()
		m.active[ar] = activeEntry{kid: rec.ID, fetched: now}
		m.mu.Unlock()
	}
	return s, nil
}

// signerFor returns the cached signer of rec, opening and caching it on a
// miss.
func (m *Manager) signerFor(rec store.SigningKey) (*Signer, error) {
	ref := keyRef{rec.TenantID, rec.ID}
	m.mu.RLock()
	s := m.signers[ref]
	m.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	s, err := m.open(rec)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if cached := m.signers[ref]; cached != nil {
		s = cached // another goroutine won the race; keep one instance
	} else {
		m.signers[ref] = s
	}
	m.mu.Unlock()
	return s, nil
}

// open decrypts and parses a stored key.
func (m *Manager) open(rec store.SigningKey) (*Signer, error) {
	ad, err := sealAD(rec.TenantID, rec.ID, rec.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("opening key %q: %w", rec.ID, err)
	}
	der, err := m.box.Open(rec.PrivateSealed, ad)
	if err != nil {
		return nil, fmt.Errorf("opening key %q: %w", rec.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("parsing key %q: %w: %w", rec.ID, ErrCorruptKey, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok || checkKeyType(priv, rec.Algorithm) != nil {
		return nil, fmt.Errorf("parsing key %q: %w: key type %T does not fit %s", rec.ID, ErrCorruptKey, parsed, rec.Algorithm)
	}
	return newSigner(priv, rec.ID, rec.Algorithm)
}

// PublicJWKS returns the tenant's published keys: active, next, and
// retiring keys whose overlap has not ended, each with kid, alg and use
// "sig". Active keys come first, then next, then retiring; newest first
// within each. It is the document served at the jwks_uri (OpenID Connect
// Discovery 1.0 section 3).
func (m *Manager) PublicJWKS(ctx context.Context, tenantID string) (jose.JSONWebKeySet, error) {
	recs, err := m.st.ListSigningKeys(ctx, tenantID)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("listing public keys of tenant %q: %w", tenantID, err)
	}
	now := m.opts.Now()
	recs = slices.DeleteFunc(slices.Clone(recs), func(r store.SigningKey) bool {
		switch r.State {
		case store.KeyActive, store.KeyNext:
			return false
		case store.KeyRetiring:
			return !r.NotAfter.After(now)
		default:
			return true
		}
	})
	slices.SortStableFunc(recs, func(a, b store.SigningKey) int {
		if c := stateRank(a.State) - stateRank(b.State); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(recs))}
	for _, r := range recs {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r.PublicJWK, &k); err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("listing public keys of tenant %q: parsing key %q: %w: %w", tenantID, r.ID, ErrCorruptKey, err)
		}
		if !k.IsPublic() || !k.Valid() {
			return jose.JSONWebKeySet{}, fmt.Errorf("listing public keys of tenant %q: key %q: %w: not a valid public key", tenantID, r.ID, ErrCorruptKey)
		}
		k.KeyID, k.Algorithm, k.Use = r.ID, r.Algorithm, "sig"
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

func stateRank(s string) int {
	switch s {
	case store.KeyActive:
		return 0
	case store.KeyNext:
		return 1
	default:
		return 2
	}
}

// Purge deletes every tenant's retiring keys whose overlap has ended and
// returns how many it deleted.
func (m *Manager) Purge(ctx context.Context) (int, error) {
	n, err := m.st.DeleteExpiredSigningKeys(ctx, m.opts.Now())
	if err != nil {
		return 0, fmt.Errorf("purging expired signing keys: %w", err)
	}
	if n > 0 {
		// The store does not say which keys went; drop the caches, which
		// refill with one decryption per active key.
		m.mu.Lock()
		clear(m.signers)
		clear(m.active)
		m.mu.Unlock()
		m.opts.Logger.InfoContext(ctx, "purged expired signing keys", slog.Int("count", n))
	}
	return n, nil
}

// Forget drops what the Manager remembers of the tenant's keys (which key
// is active, the decrypted signers), so the next Signer asks the store. A
// cluster calls it on every node when another node rotated, prepared or
// purged the tenant's keys (kernel/notify TopicKeys), so that every node
// signs with the new key within a notification's trip rather than after
// ActiveCacheTTL.
func (m *Manager) Forget(tenantID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ar := range m.active {
		if ar.tenantID == tenantID {
			delete(m.active, ar)
		}
	}
	for kr := range m.signers {
		if kr.tenantID == tenantID {
			delete(m.signers, kr)
		}
	}
}

// ForgetAll drops what the Manager remembers of every tenant's keys, as
// Forget does for one: the answer to a change notification's Resync.
func (m *Manager) ForgetAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.active)
	clear(m.signers)
}

func findActive(recs []store.SigningKey, alg string) (store.SigningKey, bool) {
	for _, r := range recs {
		if r.State == store.KeyActive && r.Algorithm == alg {
			return r, true
		}
	}
	return store.SigningKey{}, false
}

// sealAD is the associated data a private key is sealed with: a label, then
// the tenant id, key id and algorithm, each prefixed by its length as a
// 4-byte big-endian integer so that no two different triples encode alike.
// A part longer than math.MaxInt32 bytes, a bound that fits the prefix and
// compiles where int has 32 bits, is an error rather than a truncated
// length, which would break that guarantee.
func sealAD(tenantID, kid, alg string) ([]byte, error) {
	const label = "latch/signing-key/v1"
	ad := make([]byte, 0, len(label)+12+len(tenantID)+len(kid)+len(alg))
	ad = append(ad, label...)
	for _, s := range []string{tenantID, kid, alg} {
		n := len(s)
		if n > math.MaxInt32 {
			return nil, fmt.Errorf("building associated data: part of %d bytes is longer than %d", n, math.MaxInt32)
		}
		ad = binary.BigEndian.AppendUint32(ad, uint32(n))
		ad = append(ad, s...)
	}
	return ad, nil
}

func generate(alg string) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		k, err = rsa.GenerateKey(rand.Reader, RSABits)
	case EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, CheckAlgorithm(alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	return k, nil
}

func checkKeyType(k crypto.Signer, alg string) error {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PrivateKey:
		if alg == RS256 && k.N.BitLen() >= RSABits {
			return nil
		}
	case ed25519.PrivateKey:
		if alg == EdDSA {
			return nil
		}
	}
	return ErrCorruptKey
}

func publicJWK(k crypto.Signer, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
}
