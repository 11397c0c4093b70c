package webauthn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softKey is a software WebAuthn authenticator for the tests: an ES256
// key, "none" attestation, and a signature counter.
type softKey struct {
	id         []byte
	key        *ecdsa.PrivateKey
	aaguid     [16]byte
	count      uint32
	userHandle []byte
	rpID       string
	origin     string
	uv         bool
}

func newSoftKey(t testing.TB, rpID, origin string) *softKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	k := &softKey{id: id, key: key, rpID: rpID, origin: origin, uv: true}
	copy(k.aaguid[:], []byte("latch-soft-key!!"))
	return k
}

var b64 = base64.RawURLEncoding

func (k *softKey) authData(attested bool) []byte {
	h := sha256.Sum256([]byte(k.rpID))
	flags := byte(0x01) // UP
	if k.uv {
		flags |= 0x04
	}
	if attested {
		flags |= 0x40
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	if attested {
		out = append(out, k.aaguid[:]...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id))) //nolint:gosec // G115: 32.
		out = append(out, k.id...)
		pub, err := k.key.PublicKey.ECDH()
		if err != nil {
			panic(err)
		}
		raw := pub.Bytes() // 0x04 || X || Y
		cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:]})
		if err != nil {
			panic(err)
		}
		out = append(out, cose...)
	}
	return out
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// ceremony reads a challenge's data.
type ceremony struct {
	Mode    string `json:"mode"`
	Options struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
			UserVerification string `json:"userVerification"`
		} `json:"publicKey"`
	} `json:"options"`
}

func readCeremony(t testing.TB, data []byte) ceremony {
	t.Helper()
	var c ceremony
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("challenge data %s: %v", data, err)
	}
	return c
}

// create answers a registration ceremony as navigator.credentials.create
// would, in the JSON form the login page posts.
func (k *softKey) create(t testing.TB, c ceremony) string {
	t.Helper()
	uh, err := b64.DecodeString(c.Options.PublicKey.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	k.userHandle = uh
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(true)})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData("webauthn.create", c.Options.PublicKey.Challenge, k.origin)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{"credProps": map[string]any{"rk": true}},
	})
	return string(out)
}

// get answers an authentication ceremony as navigator.credentials.get
// would.
func (k *softKey) get(t testing.TB, c ceremony) string {
	t.Helper()
	k.count++
	ad := k.authData(false)
	cd := clientData("webauthn.get", c.Options.PublicKey.Challenge, k.origin)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.userHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(out)
}
