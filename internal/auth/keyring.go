// Package auth holds impact-syncer's credentials layer: encryption of secrets
// at rest (Keyring), the HTTP Basic transport for Account SID + Auth Token
// accounts, and OAuth 2.0 (authorization code + PKCE to connect an account,
// rotating refresh tokens and a Bearer transport to use it).
//
// It depends only on the domain package syncer; cmd/syncer wires it to the
// account store and the API client.
package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// KeyEnv names the environment variable holding the primary key; it appears
// in error messages so that an operator knows what to fix.
const KeyEnv = "SYNCER_ENCRYPTION_KEY"

var (
	// ErrUnknownKey means a sealed secret names a key the keyring does not hold.
	ErrUnknownKey = errors.New("unknown encryption key")
	// ErrCorrupt means a sealed secret failed authentication: it was altered,
	// truncated, or sealed for another account.
	ErrCorrupt = errors.New("sealed secret is corrupt")
)

// Key is a 256-bit key-encryption key. It never prints its bytes: every fmt
// verb shows only its id.
type Key struct {
	id string
	k  [32]byte
}

// ParseKey decodes a key: base64 (standard or URL alphabet, padded or not) of
// exactly 32 random bytes, as `openssl rand -base64 32` prints. Errors never
// contain the value.
func ParseKey(b64 string) (Key, error) {
	s := strings.TrimSpace(b64)
	if s == "" {
		return Key{}, errors.New("encryption key is empty: set it to 32 random bytes, base64-encoded (openssl rand -base64 32)")
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	if raw == nil {
		return Key{}, fmt.Errorf("encryption key is not valid base64 (%d characters): it must be 32 random bytes, base64-encoded (openssl rand -base64 32)", len(s))
	}
	if len(raw) != 32 {
		return Key{}, fmt.Errorf("encryption key decodes to %d bytes, want exactly 32 (openssl rand -base64 32)", len(raw))
	}
	var k Key
	copy(k.k[:], raw)
	clear(raw)
	if k.k == [32]byte{} {
		return Key{}, errors.New("encryption key is all zero bytes: generate a random one (openssl rand -base64 32)")
	}
	k.id = keyID(k.k)
	return k, nil
}

// GenerateKey returns a fresh random key, base64-encoded, for `syncer keys
// generate`.
func GenerateKey() syncer.Secret {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails (Go ≥ 1.24)
	defer clear(b)
	return syncer.Secret(base64.StdEncoding.EncodeToString(b))
}

// keyID is a short, stable fingerprint: the first 8 bytes of a
// domain-separated SHA-256 of the key, in hex.
func keyID(k [32]byte) string {
	h := sha256.New()
	h.Write([]byte("impact-syncer key id v1\x00"))
	h.Write(k[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ID is the key's fingerprint, stored next to every secret it seals.
func (k Key) ID() string { return k.id }

func (k Key) String() string { return "key " + k.id }

// GoString keeps %#v from printing the bytes.
func (k Key) GoString() string { return k.String() }

// Format makes every verb (also %x and %d) print only the id.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Keyring seals secrets under its primary key and opens secrets sealed under
// the primary or any older key, so that keys can be rotated: add the new key
// as primary, keep the old one as older, run `syncer keys rotate` (Reseal),
// then drop the old one.
type Keyring struct {
	primary Key
	keys    map[string]Key
}

// NewKeyring returns a keyring sealing with primary and opening with primary
// and every older key. Repeating a key is harmless.
func NewKeyring(primary Key, older ...Key) (*Keyring, error) {
	if primary.id == "" {
		return nil, fmt.Errorf("%s is not set", KeyEnv)
	}
	kr := &Keyring{primary: primary, keys: map[string]Key{primary.id: primary}}
	for i, k := range older {
		if k.id == "" {
			return nil, fmt.Errorf("older encryption key %d is not set", i+1)
		}
		if prev, ok := kr.keys[k.id]; ok && prev.k != k.k {
			return nil, fmt.Errorf("older encryption key %d has the same id %s as another key", i+1, k.id)
		}
		kr.keys[k.id] = k
	}
	return kr, nil
}

// ParseKeyring parses the primary key (the value of SYNCER_ENCRYPTION_KEY)
// and the older keys still accepted for reading; empty older entries are
// skipped. Every problem is reported at once, naming the key but never its
// value.
func ParseKeyring(primary string, older []string) (*Keyring, error) {
	var errs []error
	p, err := ParseKey(primary)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", KeyEnv, err))
	}
	var olds []Key
	for i, s := range older {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := ParseKey(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("older encryption key %d: %w", i+1, err))
			continue
		}
		olds = append(olds, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewKeyring(p, olds...)
}

// PrimaryID is the id of the key new secrets are sealed with.
func (kr *Keyring) PrimaryID() string { return kr.primary.id }

// KeyIDs lists the ids of every key the keyring opens with, primary first.
func (kr *Keyring) KeyIDs() []string {
	ids := []string{kr.primary.id}
	for id := range kr.keys {
		if id != kr.primary.id {
			ids = append(ids, id)
		}
	}
	return ids
}

// Sealed-secret layout, version 1 (all in Ciphertext; KeyID names the KEK):
//
//	version  1 byte  (= 1)
//	nonce1  12 bytes
//	wrapped 48 bytes  AES-256-GCM(KEK, nonce1, data key [32 bytes], aad)
//	nonce2  12 bytes
//	body     n+16     AES-256-GCM(data key, nonce2, plaintext, aad)
//
// aad = "impact-syncer/secret" ‖ version ‖ len(keyID) ‖ keyID ‖ accountID, so
// a ciphertext moved to another account, relabelled with another key id, or
// downgraded to another version fails to open.
const (
	version1   = 1
	nonceSize  = 12
	tagSize    = 16
	dataKeyLen = 32
	wrappedLen = dataKeyLen + tagSize
	headerLen  = 1 + nonceSize + wrappedLen + nonceSize
	minSealed  = headerLen + tagSize
)

func aad(version byte, keyID, accountID string) []byte {
	b := []byte("impact-syncer/secret\x00")
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(keyID)))
	b = append(b, keyID...)
	return append(b, accountID...)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // only for a key length other than 16/24/32
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// Seal encrypts plaintext for accountID under the primary key with a fresh
// random data key. The result opens only for the same account id.
func (kr *Keyring) Seal(accountID string, plaintext syncer.Secret) (syncer.SealedSecret, error) {
	if accountID == "" {
		return syncer.SealedSecret{}, errors.New("seal: account id is empty")
	}
	dataKey := make([]byte, dataKeyLen)
	defer clear(dataKey)
	_, _ = rand.Read(dataKey)
	ad := aad(version1, kr.primary.id, accountID)

	out := make([]byte, 0, headerLen+len(plaintext)+tagSize)
	out = append(out, version1)
	nonce1 := make([]byte, nonceSize)
	_, _ = rand.Read(nonce1)
	out = append(out, nonce1...)
	out = newGCM(kr.primary.k[:]).Seal(out, nonce1, dataKey, ad)
	nonce2 := make([]byte, nonceSize)
	_, _ = rand.Read(nonce2)
	out = append(out, nonce2...)
	pt := []byte(plaintext.Reveal())
	defer clear(pt)
	out = newGCM(dataKey).Seal(out, nonce2, pt, ad)
	return syncer.SealedSecret{KeyID: kr.primary.id, Ciphertext: out}, nil
}

// Open decrypts a secret sealed for accountID. It returns ErrUnknownKey
// (wrapped) if the keyring lacks the key the secret names, and ErrCorrupt
// (wrapped) if the ciphertext fails authentication. Errors never contain
// secret bytes.
func (kr *Keyring) Open(accountID string, s syncer.SealedSecret) (syncer.Secret, error) {
	k, ok := kr.keys[s.KeyID]
	if !ok {
		return "", fmt.Errorf("account %s: %w: the secret was encrypted with key %s, which %s does not hold (nor any older key configured)",
			accountID, ErrUnknownKey, printableID(s.KeyID), KeyEnv)
	}
	c := s.Ciphertext
	if len(c) == 0 {
		return "", fmt.Errorf("account %s: %w: it is empty", accountID, ErrCorrupt)
	}
	if c[0] != version1 {
		return "", fmt.Errorf("account %s: %w: unsupported format version %d", accountID, ErrCorrupt, c[0])
	}
	if len(c) < minSealed {
		return "", fmt.Errorf("account %s: %w: truncated (%d bytes, at least %d expected)", accountID, ErrCorrupt, len(c), minSealed)
	}
	ad := aad(c[0], s.KeyID, accountID)
	nonce1 := c[1 : 1+nonceSize]
	wrapped := c[1+nonceSize : 1+nonceSize+wrappedLen]
	nonce2 := c[1+nonceSize+wrappedLen : headerLen]
	body := c[headerLen:]

	dataKey, err := newGCM(k.k[:]).Open(nil, nonce1, wrapped, ad)
	if err != nil {
		return "", fmt.Errorf("account %s: %w: it was altered, or sealed for another account", accountID, ErrCorrupt)
	}
	defer clear(dataKey)
	pt, err := newGCM(dataKey).Open(nil, nonce2, body, ad)
	if err != nil {
		return "", fmt.Errorf("account %s: %w: it was altered, or sealed for another account", accountID, ErrCorrupt)
	}
	return syncer.Secret(pt), nil
}

// Reseal re-encrypts a secret under the primary key, for `syncer keys rotate`.
// A secret already under the primary key is checked and returned unchanged
// (changed is false), so the caller can skip the write.
func (kr *Keyring) Reseal(accountID string, s syncer.SealedSecret) (out syncer.SealedSecret, changed bool, err error) {
	pt, err := kr.Open(accountID, s)
	if err != nil {
		return syncer.SealedSecret{}, false, err
	}
	if s.KeyID == kr.primary.id {
		return syncer.SealedSecret{KeyID: s.KeyID, Ciphertext: bytes.Clone(s.Ciphertext)}, false, nil
	}
	out, err = kr.Seal(accountID, pt)
	return out, err == nil, err
}

// Rotation is what ResealAll did.
type Rotation struct {
	Changed int     // secrets re-encrypted under the primary key
	Same    int     // secrets already under it, and accounts with no secret
	Failed  []error // one per secret that could not be re-encrypted, naming its account
}

// ResealAll re-encrypts every account's stored secret under the primary key
// (`syncer keys rotate`), writing only those that change. A secret that
// cannot be read, opened or stored does not stop the others: it goes into
// Failed. The error is for listing the accounts only.
func (kr *Keyring) ResealAll(ctx context.Context, store syncer.AccountStore) (Rotation, error) {
	accts, err := store.Accounts(ctx)
	if err != nil {
		return Rotation{}, err
	}
	var r Rotation
	for _, ac := range accts {
		sealed, err := store.Secret(ctx, ac.ID)
		if err != nil {
			r.Failed = append(r.Failed, fmt.Errorf("account %s: %w", ac.ID, err))
			continue
		}
		if len(sealed.Ciphertext) == 0 {
			r.Same++
			continue
		}
		out, did, err := kr.Reseal(ac.ID, sealed)
		if err != nil {
			r.Failed = append(r.Failed, err) // names the account already
			continue
		}
		if !did {
			r.Same++
			continue
		}
		if err := store.SetSecret(ctx, ac.ID, out); err != nil {
			r.Failed = append(r.Failed, fmt.Errorf("account %s: %w", ac.ID, err))
			continue
		}
		r.Changed++
	}
	return r, nil
}

// printableID quotes a key id read from storage, cut short if it is long.
func printableID(id string) string {
	if len(id) > 32 {
		id = id[:32] + "…"
	}
	return fmt.Sprintf("%q", id)
}
