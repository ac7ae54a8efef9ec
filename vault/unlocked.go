package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/keyhold/keyhold/storage"
)

// Record envelopes (FORMAT.md §3.3): format ‖ algorithm ‖ key version
// (u32) ‖ [record version (u64), format 2 only] ‖ nonce ‖ ciphertext ‖ tag.
const (
	envelopeFormat          = 1 // Seal: no record version
	envelopeFormatVersioned = 2 // SealVersion: with a record version
	envelopeAESGCM          = 1
	envelopeHeaderLen       = 2 + 4
	versionedHeaderLen      = envelopeHeaderLen + 8
	envelopeOverhead        = envelopeHeaderLen + gcmNonceLen + gcmTagLen

	// MaxContextLen is the longest record context, in bytes.
	MaxContextLen = 1024
	// MaxPlaintextLen is the longest plaintext Seal accepts: 64 MiB.
	MaxPlaintextLen = 64 << 20
	// maxSealsPerKey stays well below the 2^32 random-nonce bound of
	// NIST SP 800-38D §8.3 for one Unlocked value.
	maxSealsPerKey = 1 << 31
)

// Unlocked is a user's vault with its master key in memory: it seals and
// opens that user's records. It never prints, marshals or logs the key;
// [Unlocked.Lock] wipes it (best effort: Go cannot promise that no copy of
// a key remains in memory, and the AES key schedule inside the standard
// library's cipher cannot be wiped).
//
// An Unlocked is safe for concurrent use.
type Unlocked struct {
	userID  string
	version uint32

	mu      sync.RWMutex // guards mk and retired
	mk      []byte       // nil once locked
	retired map[uint32][]byte
	// recordKeys is nil until first used and once locked. It is
	// replaced, never modified, so Seal and Open read it without taking
	// mu once it is set.
	recordKeys atomic.Pointer[recordKeys]
	sealed     atomic.Uint64
}

// recordKeys holds the record AEADs of the current and retired versions.
type recordKeys struct {
	current   cipher.AEAD
	byVersion map[uint32]cipher.AEAD
}

// recordAEAD derives a master key's record key and returns its AEAD.
func recordAEAD(mk []byte) (cipher.AEAD, error) {
	rk, err := hkdf.Key(sha256.New, mk, nil, labelRecordKey, 32)
	if err != nil {
		return nil, fmt.Errorf("vault: deriving record key: %w", err)
	}
	defer clear(rk)
	return newGCM(rk)
}

// newUnlocked takes ownership of mk and of the retired keys. The record
// AEADs are derived on first use (see keys), so that a vault opened only to
// be handed on (a session's custody) costs no key schedule.
func newUnlocked(userID string, version uint32, mk []byte, retired map[uint32][]byte) *Unlocked {
	return &Unlocked{userID: userID, version: version, mk: mk, retired: retired}
}

// keys returns the record AEADs, deriving them on first use, or ErrLocked.
func (u *Unlocked) keys() (*recordKeys, error) {
	if k := u.recordKeys.Load(); k != nil {
		return k, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if k := u.recordKeys.Load(); k != nil {
		return k, nil
	}
	if u.mk == nil {
		return nil, ErrLocked
	}
	k := &recordKeys{byVersion: make(map[uint32]cipher.AEAD, 1+len(u.retired))}
	for v, key := range u.retired {
		aead, err := recordAEAD(key)
		if err != nil {
			return nil, err
		}
		k.byVersion[v] = aead
	}
	aead, err := recordAEAD(u.mk)
	if err != nil {
		return nil, err
	}
	k.current = aead
	k.byVersion[u.version] = aead
	u.recordKeys.Store(k)
	return k, nil
}

// UserID returns the user whose vault this is.
func (u *Unlocked) UserID() string {
	if u == nil {
		return ""
	}
	return u.userID
}

// KeyVersion returns the master key's version.
func (u *Unlocked) KeyVersion() uint32 {
	if u == nil {
		return 0
	}
	return u.version
}

// String returns a redacted description.
func (u *Unlocked) String() string { return "vault.Unlocked{user: [redacted], key: [redacted]}" }

// GoString returns the same redacted description as String.
func (u *Unlocked) GoString() string { return u.String() }

// Format prints the redacted description for every verb, so that no
// formatting directive can reach the key.
func (u *Unlocked) Format(f fmt.State, verb rune) { fmt.Fprint(f, u.String()) }

// MarshalJSON fails: an unlocked key is never serialised.
func (u *Unlocked) MarshalJSON() ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	return nil, fmt.Errorf("vault: an Unlocked vault cannot be marshalled")
}

// MarshalText fails: an unlocked key is never serialised.
func (u *Unlocked) MarshalText() ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	return nil, fmt.Errorf("vault: an Unlocked vault cannot be marshalled")
}

// Lock wipes the master key; every later call returns ErrLocked. Locking
// twice is harmless.
func (u *Unlocked) Lock() {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.mk)
	u.mk = nil
	for v, k := range u.retired {
		clear(k)
		delete(u.retired, v)
	}
	u.recordKeys.Store(nil)
}

// RetiredVersions returns the versions of older master keys this vault
// still holds, decrypt-only, after a rotation: records sealed under them
// still open, and [Unlocked.Reseal] moves them to the current version.
func (u *Unlocked) RetiredVersions() []uint32 {
	if u == nil {
		return nil
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	vs := make([]uint32, 0, len(u.retired))
	for v := range u.retired {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// checkUnlocked returns ErrLocked once u is locked, without copying a key.
func (u *Unlocked) checkUnlocked() error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.mk == nil {
		return ErrLocked
	}
	return nil
}

// masterKey returns a copy of the master key, or ErrLocked.
func (u *Unlocked) masterKey() ([]byte, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.mk == nil {
		return nil, ErrLocked
	}
	return append([]byte(nil), u.mk...), nil
}

// maxRecordAADLen bounds recordAAD's output: user IDs are at most
// storage.MaxUserIDLen bytes and contexts at most MaxContextLen.
const maxRecordAADLen = len(labelRecordAAD) + versionedHeaderLen + 2 + storage.MaxUserIDLen + MaxContextLen

// aadBuffers recycles associated-data buffers so that Seal and Open
// allocate only their output. Associated data is not secret (user ID,
// context, header), so a recycled buffer leaks nothing.
var aadBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxRecordAADLen); return &b }}

// recordAAD appends label ‖ envelope header ‖ u16 len(user) ‖ user ‖
// context to dst[:0].
func (u *Unlocked) recordAAD(dst, header, context []byte) []byte {
	b := append(dst[:0], labelRecordAAD...)
	b = append(b, header...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(u.userID)))
	b = append(b, u.userID...)
	return append(b, context...)
}

// Seal encrypts plaintext for this user with AES-256-GCM under a key
// derived from the master key. context names what the record is (for
// example "notes/42/body"): it is bound as associated data together with
// the user ID and key version, so the result opens only for this user,
// this context and this key. The output carries its own format version,
// key version and random nonce (FORMAT.md §3.3).
//
// Seal binds no record version: someone who can write the database can
// put back an older ciphertext of the same record and Open accepts it.
// Where that matters, use [Unlocked.SealVersion] and
// [Unlocked.OpenVersion].
func (u *Unlocked) Seal(plaintext, context []byte) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	return u.seal(plaintext, context, false, 0)
}

// SealVersion is Seal with a record version: version, a counter the
// application increases each time it writes this record (1, 2, 3, …), is
// stored in the envelope's header and authenticated with it, so it cannot
// be edited, nor moved to another record, without the record failing to
// open. [Unlocked.OpenVersion] refuses a record whose version is below the
// one the application expects, so an older ciphertext of the same record,
// put back by someone who can write the database, does not open
// (ErrRollback). The output is format 2 of FORMAT.md §3.3, 8 bytes longer
// than Seal's.
//
// The protection is only as good as where the application keeps the
// version it expects: see [Unlocked.OpenVersion] and SECURITY.md.
func (u *Unlocked) SealVersion(plaintext, context []byte, version uint64) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	return u.seal(plaintext, context, true, version)
}

func (u *Unlocked) seal(plaintext, context []byte, versioned bool, version uint64) ([]byte, error) {
	if len(context) > MaxContextLen || len(plaintext) > MaxPlaintextLen {
		return nil, fmt.Errorf("%w: context or plaintext too long", ErrInvalidInput)
	}
	if u.sealed.Add(1) > maxSealsPerKey {
		return nil, ErrRekeyRequired
	}
	headerLen := envelopeHeaderLen
	if versioned {
		headerLen = versionedHeaderLen
	}
	out := make([]byte, headerLen+gcmNonceLen, headerLen+gcmNonceLen+len(plaintext)+gcmTagLen)
	out[0], out[1] = envelopeFormat, envelopeAESGCM
	binary.BigEndian.PutUint32(out[2:], u.version)
	if versioned {
		out[0] = envelopeFormatVersioned
		binary.BigEndian.PutUint64(out[envelopeHeaderLen:], version)
	}
	nonce := out[headerLen:]
	rand.Read(nonce)
	buf := aadBuffers.Get().(*[]byte)
	defer aadBuffers.Put(buf)
	aad := u.recordAAD(*buf, out[:headerLen], context)
	keys, err := u.keys()
	if err != nil {
		return nil, err
	}
	return keys.current.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts what Seal produced for the same user and context. Every
// failure is ErrDecrypt (or ErrLocked once locked).
//
// Open also opens what SealVersion produced, without checking its record
// version; use [Unlocked.OpenVersion] for those records.
func (u *Unlocked) Open(sealed, context []byte) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	pt, _, _, err := u.open(sealed, context)
	return pt, err
}

// OpenVersion decrypts what SealVersion (or Seal) produced for the same
// user and context, and refuses a rollback: it returns the record's
// version, and an error matching ErrRollback (with no plaintext) when that
// version is below minVersion, the version the application expects. The
// version is checked only once the record has proved authentic, so a
// tampered or moved version is ErrDecrypt, never ErrRollback. A record
// made by Seal reads as version 0: records sealed before an application
// adopted versions still open with minVersion 0, and none opens once the
// application expects 1 or more.
//
// This stops an older ciphertext of the same record put back in the
// database only if the attacker cannot also roll back minVersion: keep it
// where they cannot (a client's memory of the highest version it has seen,
// a store other than the one holding the records). A version kept in
// another column of the same row is rolled back with it by anyone who can
// write that row.
func (u *Unlocked) OpenVersion(sealed, context []byte, minVersion uint64) (plaintext []byte, version uint64, err error) {
	if u == nil {
		return nil, 0, errNilUnlocked
	}
	pt, _, version, err := u.open(sealed, context)
	if err != nil {
		return nil, 0, err
	}
	if version < minVersion {
		clear(pt)
		return nil, version, fmt.Errorf("%w: record version %d, expected at least %d", ErrRollback, version, minVersion)
	}
	return pt, version, nil
}

// open decrypts a record of either format and returns its plaintext,
// whether it is versioned (format 2) and its record version (0 for
// format 1).
func (u *Unlocked) open(sealed, context []byte) (pt []byte, versioned bool, version uint64, err error) {
	if len(sealed) < envelopeOverhead || len(context) > MaxContextLen || sealed[1] != envelopeAESGCM {
		return nil, false, 0, ErrDecrypt
	}
	headerLen := envelopeHeaderLen
	switch sealed[0] {
	case envelopeFormat:
	case envelopeFormatVersioned:
		headerLen, versioned = versionedHeaderLen, true
		if len(sealed) < headerLen+gcmNonceLen+gcmTagLen {
			return nil, false, 0, ErrDecrypt
		}
		version = binary.BigEndian.Uint64(sealed[envelopeHeaderLen:])
	default:
		return nil, false, 0, ErrDecrypt
	}
	buf := aadBuffers.Get().(*[]byte)
	defer aadBuffers.Put(buf)
	aad := u.recordAAD(*buf, sealed[:headerLen], context)
	nonce := sealed[headerLen : headerLen+gcmNonceLen]
	keys, err := u.keys()
	if err != nil {
		return nil, false, 0, err
	}
	aead, ok := keys.byVersion[binary.BigEndian.Uint32(sealed[2:])]
	if !ok {
		return nil, false, 0, ErrDecrypt
	}
	pt, err = aead.Open(nil, nonce, sealed[headerLen+gcmNonceLen:], aad)
	if err != nil {
		return nil, false, 0, ErrDecrypt
	}
	return pt, versioned, version, nil
}

// wrapKey encrypts mk under kek with AES-256-GCM: nonce ‖ ct ‖ tag.
func wrapKey(kek, mk, aad []byte) ([]byte, error) {
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcmNonceLen, wrappedKeyLen)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, mk, aad), nil
}

// unwrapKey reverses wrapKey; every failure is ErrUnlockFailed.
func unwrapKey(kek, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) != wrappedKeyLen {
		return nil, ErrUnlockFailed
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, ErrUnlockFailed
	}
	mk, err := aead.Open(nil, wrapped[:gcmNonceLen], wrapped[gcmNonceLen:], aad)
	if err != nil || len(mk) != masterKeyLen {
		clear(mk)
		return nil, ErrUnlockFailed
	}
	return mk, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
