package totp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"

	"github.com/keyhold/keyhold/vault"
)

// A Sealer encrypts the TOTP secrets (and the setup tokens that carry
// them before confirmation) for storage. keyhold provides two, which are
// the application's choice: a [KeyRing] of application keys (codes can be
// checked at any time: the usual choice), or [VaultSealer] (secrets sealed
// under each user's vault: codes can be checked only while the user's
// vault is unlocked; see the package documentation for the trade-off).
//
// ad is associated data that binds a sealed secret to its user, its
// authenticator and its purpose: Open with other ad must fail. An
// implementation (a KMS envelope, say) must authenticate ad, must take its
// randomness from crypto/rand, and must never log plaintext.
type Sealer interface {
	// Seal encrypts plaintext for userID, bound to ad.
	Seal(ctx context.Context, userID string, plaintext, ad []byte) ([]byte, error)
	// Open decrypts what Seal returned for the same userID and ad, or
	// returns an error.
	Open(ctx context.Context, userID string, sealed, ad []byte) ([]byte, error)
	// Stale reports whether sealed should be sealed again (it is under a
	// key the Sealer keeps only to open old secrets): Authenticator.Reseal
	// re-seals such secrets.
	Stale(sealed []byte) bool
}

// Bounds of a KeyRing.
const (
	// KeyRingKeyLen is the length of every key in a KeyRing: AES-256.
	KeyRingKeyLen = 32
	// MaxKeyIDLen is the longest key ID, in bytes.
	MaxKeyIDLen = 32
)

const keyRingFormat = 1

// A KeyRing seals secrets with AES-256-GCM under application keys named by
// IDs. It seals under its current key and opens under any key it holds,
// so keys rotate without downtime: add a new key and make it current (on
// every instance), run [Authenticator.Reseal] over the users, then drop the
// old key. The sealed form names its key's ID (FORMAT.md §6.2).
//
// Keep the keys outside the database (configuration, a secrets manager):
// a dump of the store without them holds no TOTP secret.
type KeyRing struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyRing returns a KeyRing that seals under keys[current] and opens
// under every key in keys. Key IDs are 1 to MaxKeyIDLen printable ASCII
// bytes; keys are KeyRingKeyLen bytes from a CSPRNG (the ring keeps its
// own copies). An error wraps ErrInvalidInput and names no key.
func NewKeyRing(current string, keys map[string][]byte) (*KeyRing, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("%w: the current key ID is not in the ring", ErrInvalidInput)
	}
	r := &KeyRing{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		if !validKeyID(id) {
			return nil, fmt.Errorf("%w: key IDs are 1 to %d printable ASCII bytes", ErrInvalidInput, MaxKeyIDLen)
		}
		if len(keys[id]) != KeyRingKeyLen {
			return nil, fmt.Errorf("%w: key %q is not %d bytes", ErrInvalidInput, id, KeyRingKeyLen)
		}
		block, err := aes.NewCipher(bytes.Clone(keys[id]))
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.aeads[id] = aead
	}
	return r, nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// CurrentKeyID returns the ID of the key new secrets are sealed under.
func (r *KeyRing) CurrentKeyID() string {
	if r == nil {
		return ""
	}
	return r.current
}

// keyRingAD is what a KeyRing authenticates: the caller's ad, the user,
// and the key's ID.
func keyRingAD(userID string, keyID string, ad []byte) []byte {
	b := make([]byte, 0, len(ad)+len(userID)+len(keyID)+8)
	b = appendString16(b, "keyhold/totp/keyring/v1")
	b = appendString16(b, userID)
	b = appendString16(b, keyID)
	return append(b, ad...)
}

// Seal encrypts plaintext under the current key: format byte, key ID
// length and key ID, a 96-bit random nonce, then the ciphertext and tag.
func (r *KeyRing) Seal(_ context.Context, userID string, plaintext, ad []byte) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil KeyRing", ErrInvalidInput)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return r.sealWithNonce(userID, plaintext, ad, nonce), nil
}

// sealWithNonce is Seal with a given nonce (for the FORMAT.md vectors).
func (r *KeyRing) sealWithNonce(userID string, plaintext, ad, nonce []byte) []byte {
	aead := r.aeads[r.current]
	out := make([]byte, 0, 2+len(r.current)+len(nonce)+len(plaintext)+aead.Overhead())
	out = append(out, keyRingFormat, byte(len(r.current)))
	out = append(out, r.current...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, keyRingAD(userID, r.current, ad))
}

// Open decrypts what Seal returned, under whichever key of the ring it
// names. Any failure is ErrUnsealFailed.
func (r *KeyRing) Open(_ context.Context, userID string, sealed, ad []byte) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil KeyRing", ErrInvalidInput)
	}
	keyID, rest, ok := splitKeyRing(sealed)
	if !ok {
		return nil, ErrUnsealFailed
	}
	aead, ok := r.aeads[keyID]
	if !ok || len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUnsealFailed
	}
	pt, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], keyRingAD(userID, keyID, ad))
	if err != nil {
		return nil, ErrUnsealFailed
	}
	return pt, nil
}

// Stale reports whether sealed is under a key other than the current one.
func (r *KeyRing) Stale(sealed []byte) bool {
	if r == nil {
		return false
	}
	keyID, _, ok := splitKeyRing(sealed)
	return ok && keyID != r.current
}

func splitKeyRing(sealed []byte) (keyID string, rest []byte, ok bool) {
	if len(sealed) < 2 || sealed[0] != keyRingFormat || int(sealed[1]) > len(sealed)-2 || sealed[1] == 0 {
		return "", nil, false
	}
	n := int(sealed[1])
	return string(sealed[2 : 2+n]), sealed[2+n:], true
}

type vaultKey struct{}

// WithVault returns a context that carries the user's unlocked vault, for
// the VaultSealer: pass it to the Authenticator's methods for that user
// (from session.Manager.Unlocked, or right after vault.Vault.Unlock).
func WithVault(ctx context.Context, u *vault.Unlocked) context.Context {
	return context.WithValue(ctx, vaultKey{}, u)
}

// VaultSealer returns a Sealer that seals each user's secrets under that
// user's vault (vault.Unlocked.Seal, whose record envelope binds the user
// and the associated data). Every Authenticator call that opens or seals
// a secret (Begin, Pending, Confirm, Verify, Reseal) needs a context from
// WithVault holding the user's unlocked vault, and fails with
// ErrVaultLocked without one. Verify fails likewise, so the second factor
// can be checked only while the vault is open: at login that means taking
// the passphrase and the code in one request, or keeping the vault
// unlocked in a pending session, which keyhold's session refuses
// (ErrSecondFactorRequired). Use a KeyRing unless the app asks for a code
// only from users whose vault it already holds.
func VaultSealer() Sealer { return vaultSealer{} }

type vaultSealer struct{}

func (vaultSealer) unlocked(ctx context.Context, userID string) (*vault.Unlocked, error) {
	u, _ := ctx.Value(vaultKey{}).(*vault.Unlocked)
	if u == nil || u.UserID() != userID {
		return nil, ErrVaultLocked
	}
	return u, nil
}

func (s vaultSealer) Seal(ctx context.Context, userID string, plaintext, ad []byte) ([]byte, error) {
	u, err := s.unlocked(ctx, userID)
	if err != nil {
		return nil, err
	}
	return u.Seal(plaintext, ad)
}

func (s vaultSealer) Open(ctx context.Context, userID string, sealed, ad []byte) ([]byte, error) {
	u, err := s.unlocked(ctx, userID)
	if err != nil {
		return nil, err
	}
	pt, err := u.Open(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	return pt, nil
}

// Stale is false: the vault's own master-key rotation keeps old versions
// open (vault.Unlocked.Reseal moves records forward).
func (vaultSealer) Stale([]byte) bool { return false }
