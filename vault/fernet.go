package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/fernet/fernet-go"
)

// Fernet tokens (FORMAT.md §3.5) are a legacy format, supported only for
// compatibility with applications (typically Python ones using
// cryptography.fernet) that already store or exchange them. Fernet is
// AES-128-CBC with HMAC-SHA256, encrypt-then-MAC: ASVS Appendix C rates
// both AES-128 and CBC as legacy. New data belongs in Unlocked.Seal.

// labelFernetKey is the HKDF info of a user's Fernet key (FORMAT.md §3.5).
const labelFernetKey = "keyhold/v1/vault/fernet-key"

// FernetNoTTL, given as OpenFernet's ttl, accepts a token of any age, as
// Python's Fernet.decrypt does without a ttl. A timestamp more than 60
// seconds in the future is refused all the same.
const FernetNoTTL time.Duration = -1

const (
	fernetVersion  = 0x80
	fernetTSOff    = 1
	fernetIVOff    = fernetTSOff + 8
	fernetCTOff    = fernetIVOff + aes.BlockSize
	fernetMACLen   = sha256.Size
	fernetOverhead = fernetCTOff + fernetMACLen // 57
	// fernetMinLen is the shortest well-formed token: one ciphertext block
	// (PKCS #7 always pads), 73 bytes.
	fernetMinLen = fernetOverhead + aes.BlockSize
	// fernetMaxClockSkew is how far in the future a timestamp may lie,
	// as in the Fernet spec, Python's cryptography and fernet-go.
	fernetMaxClockSkew = 60
)

// fernetB64 is the token alphabet: base64url with padding, refusing
// non-zero trailing bits. Line breaks, which package base64 would skip,
// are refused before decoding.
var fernetB64 = base64.URLEncoding.Strict()

// fernetMaxTokenLen is the encoded length of a token carrying
// MaxPlaintextLen bytes; longer input is refused before any decoding.
var fernetMaxTokenLen = fernetB64.EncodedLen(fernetOverhead + MaxPlaintextLen/aes.BlockSize*aes.BlockSize + aes.BlockSize)

// fernetKey derives the user's Fernet key from the master key: 16 bytes
// of HMAC-SHA256 key followed by 16 bytes of AES-128 key.
func (u *Unlocked) fernetKey() (*fernet.Key, error) {
	mk, err := u.masterKey()
	if err != nil {
		return nil, err
	}
	defer clear(mk)
	b, err := hkdf.Key(sha256.New, mk, nil, labelFernetKey, len(fernet.Key{}))
	if err != nil {
		return nil, fmt.Errorf("vault: deriving fernet key: %w", err)
	}
	k := new(fernet.Key)
	copy(k[:], b)
	clear(b)
	return k, nil
}

// SealFernet encrypts plaintext into a Fernet token (base64url text, as
// bytes) under this user's Fernet key, stamped with the current time and
// a random IV. Python's cryptography.fernet.Fernet opens it given the key
// from [Unlocked.UnsafeExportFernetKey].
//
// Fernet is legacy (AES-128-CBC with HMAC-SHA256) and is supported only
// for compatibility: it binds no user, purpose or context, so every token
// of this user opens with the same key, and an application that uses
// Fernet for more than one purpose must name the purpose inside the
// plaintext and check it after opening. The key is derived from the
// current master key: after [Vault.RotateMasterKey], tokens sealed before
// no longer open. Use [Unlocked.Seal] for anything new.
//
// It returns [ErrInvalidInput] for a plaintext over [MaxPlaintextLen] and
// [ErrLocked] once locked.
func (u *Unlocked) SealFernet(plaintext []byte) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	if len(plaintext) > MaxPlaintextLen {
		return nil, fmt.Errorf("%w: plaintext too long", ErrInvalidInput)
	}
	k, err := u.fernetKey()
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	var iv [aes.BlockSize]byte
	rand.Read(iv[:])
	return sealFernetAt(k, iv[:], time.Now(), plaintext), nil
}

// OpenFernet verifies a Fernet token made with this user's Fernet key (by
// [Unlocked.SealFernet] or by a service holding the exported key) and
// returns its plaintext. ttl is the oldest token accepted; pass
// [FernetNoTTL] to accept any age. A timestamp more than 60 seconds in the
// future is always refused.
//
// Checks run in the order of the Fernet spec: base64url, version 0x80,
// timestamp, HMAC-SHA256 in constant time, AES-128-CBC decryption and
// PKCS #7 unpadding; nothing is decrypted before the MAC has been checked.
// Every failure is [ErrDecrypt] (or [ErrLocked] once locked); a ttl that
// is neither positive nor FernetNoTTL is [ErrInvalidInput].
func (u *Unlocked) OpenFernet(token []byte, ttl time.Duration) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	if ttl <= 0 && ttl != FernetNoTTL {
		return nil, fmt.Errorf("%w: fernet ttl must be positive or FernetNoTTL", ErrInvalidInput)
	}
	k, err := u.fernetKey()
	if err != nil {
		return nil, err
	}
	defer clear(k[:])
	return openFernetAt(k, token, ttl, time.Now())
}

// UnsafeExportFernetKey returns this user's Fernet key in the form
// Python's cryptography.fernet.Fernet(key) accepts (32 bytes, base64url
// with padding), for an application that must hand it to another service.
//
// The name says what it does: whoever holds the exported key can read and
// forge every Fernet token of this user, for as long as the current master
// key version lives, and the key cannot be revoked except by rotating the
// master key ([Vault.RotateMasterKey]), which also invalidates every
// earlier token. It does not reveal the master key or open records sealed
// with [Unlocked.Seal] (the Fernet key is a separate HKDF output). The
// returned string cannot be wiped from memory; do not log or store it in
// clear.
func (u *Unlocked) UnsafeExportFernetKey() (string, error) {
	if u == nil {
		return "", errNilUnlocked
	}
	k, err := u.fernetKey()
	if err != nil {
		return "", err
	}
	defer clear(k[:])
	return k.Encode(), nil
}

// sealFernetAt builds the token of the Fernet spec for msg with the given
// IV and time: 0x80 ‖ u64 seconds ‖ IV ‖ AES-128-CBC(PKCS #7(msg)) ‖
// HMAC-SHA256 over all before it, base64url-encoded. fernet-go has the same
// code but draws the IV itself, so the spec's generate vector (a fixed IV)
// could not be checked through it.
func sealFernetAt(k *fernet.Key, iv []byte, now time.Time, msg []byte) []byte {
	padLen := aes.BlockSize - len(msg)%aes.BlockSize
	ctLen := len(msg) + padLen
	b := make([]byte, fernetCTOff+ctLen, fernetOverhead+ctLen)
	b[0] = fernetVersion
	binary.BigEndian.PutUint64(b[fernetTSOff:], uint64(now.Unix()))
	copy(b[fernetIVOff:fernetCTOff], iv)
	ct := b[fernetCTOff:]
	copy(ct, msg)
	for i := len(msg); i < ctLen; i++ {
		ct[i] = byte(padLen)
	}
	block, _ := aes.NewCipher(k[16:]) // 16 bytes: cannot fail
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	mac := hmac.New(sha256.New, k[:16])
	mac.Write(b)
	b = mac.Sum(b)
	out := make([]byte, fernetB64.EncodedLen(len(b)))
	fernetB64.Encode(out, b)
	return out
}

// openFernetAt verifies token as of now. It checks the encoding, version,
// length and timestamp itself, because fernet.VerifyAndDecrypt reads the
// clock (time.Now) with no way to pass the spec vectors' fixed "now",
// skips the future-timestamp check when no TTL is given, and ignores
// base64 errors; it then leaves the MAC, decryption and unpadding to
// fernet-go with its clock check off (ttl 0), and refuses padding that
// PKCS #7 does not allow but fernet-go's unpad accepts (a pad byte of 0
// or above 16). Every failure is ErrDecrypt.
func openFernetAt(k *fernet.Key, token []byte, ttl time.Duration, now time.Time) ([]byte, error) {
	if len(token) > fernetMaxTokenLen {
		return nil, ErrDecrypt
	}
	for _, c := range token {
		if c == '\r' || c == '\n' {
			return nil, ErrDecrypt
		}
	}
	b := make([]byte, fernetB64.DecodedLen(len(token)))
	n, err := fernetB64.Decode(b, token)
	if err != nil || n < fernetMinLen || b[0] != fernetVersion {
		return nil, ErrDecrypt
	}
	b = b[:n]
	if !fernetTimeOK(binary.BigEndian.Uint64(b[fernetTSOff:]), ttl, now) {
		return nil, ErrDecrypt
	}
	msg := fernet.VerifyAndDecrypt(token, 0, []*fernet.Key{k})
	if msg == nil {
		return nil, ErrDecrypt
	}
	if pad := n - fernetOverhead - len(msg); pad < 1 || pad > aes.BlockSize {
		return nil, ErrDecrypt
	}
	return msg, nil
}

// fernetTimeOK applies the spec's time checks in whole seconds, as
// Python's cryptography does: ts may lie at most 60 s after now, and, when
// ttl is positive, at most ttl before it.
func fernetTimeOK(ts uint64, ttl time.Duration, now time.Time) bool {
	nowS := now.Unix()
	if nowS < 0 || ts > uint64(nowS)+fernetMaxClockSkew {
		return false
	}
	if ttl <= 0 {
		return true
	}
	age := nowS - int64(ts) // ts ≤ nowS+60, so no overflow
	return age <= 0 || (age <= math.MaxInt64/int64(time.Second) && time.Duration(age)*time.Second <= ttl)
}
