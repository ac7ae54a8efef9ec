package passkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keyhold/keyhold/storage"
)

// recordVersion is the first byte of an encoded passkey record
// (FORMAT.md §7).
const recordVersion = 1

// Bounds of a credential's fields in a record.
const (
	// MaxNameLen is the longest name a user gives a passkey, in bytes
	// of UTF-8.
	MaxNameLen = 64
	// maxPublicKeyLen bounds a COSE public key (an RSA-4096 key is about
	// 550 bytes).
	maxPublicKeyLen = 2048
	// maxTransports bounds the transports kept for one credential, and
	// maxShortField the length of a transport or attestation name.
	maxTransports = 8
	maxShortField = 32
	// prfSaltLen is the length of every credential's PRF salt.
	prfSaltLen = 32
	// aaguidLen is the length of an AAGUID.
	aaguidLen = 16
)

// Bits of a credential's flags byte (FORMAT.md §7).
const (
	flagUVInitialized  = 1 << 0
	flagBackupEligible = 1 << 1
	flagBackupState    = 1 << 2
	flagPRF            = 1 << 3
	flagCloneWarning   = 1 << 4
	knownFlags         = flagUVInitialized | flagBackupEligible | flagBackupState | flagPRF | flagCloneWarning
)

// errMalformed is the error of a stored record that does not decode.
var errMalformed = errors.New("passkey: malformed passkey record")

// credential is one stored WebAuthn credential record.
type credential struct {
	id         []byte
	publicKey  []byte // COSE_Key, as the authenticator gave it
	alg        int32  // COSE algorithm identifier of publicKey
	signCount  uint32
	flags      uint8
	transports []string
	attType    string // attestation type ("none", "self", …)
	attFormat  string // attestation statement format ("none", "packed", …)
	aaguid     []byte // 0 or 16 bytes
	created    time.Time
	lastUsed   time.Time // zero: never used to log in
	name       string
	prfSalt    []byte // 0 or prfSaltLen bytes: the salt of the PRF evaluations that unlock
}

func (c *credential) has(flag uint8) bool { return c.flags&flag != 0 }

func (c *credential) set(flag uint8, on bool) {
	if on {
		c.flags |= flag
	} else {
		c.flags &^= flag
	}
}

// record is one user's passkeys: the handle and the credentials.
type record struct {
	userID  string
	handle  []byte
	version uint64 // the store's version; 0: not stored
	creds   []credential
}

// passkeyLevel reports whether the account has a passkey: then a change
// to its passkeys (adding or removing one) needs a multi-factor session.
func (r *record) passkeyLevel() bool {
	return len(r.creds) > 0
}

// credentialIDs are the IDs of r's credentials.
func (r *record) credentialIDs() [][]byte {
	ids := make([][]byte, len(r.creds))
	for i := range r.creds {
		ids[i] = r.creds[i].id
	}
	return ids
}

// find returns the index of the credential with this ID, or -1.
func (r *record) find(id []byte) int {
	for i := range r.creds {
		if string(r.creds[i].id) == string(id) {
			return i
		}
	}
	return -1
}

// storageRecord is r as the store keeps it.
func (r *record) storageRecord() (storage.PasskeyRecord, error) {
	data, err := r.encode()
	if err != nil {
		return storage.PasskeyRecord{}, err
	}
	ids := make([][]byte, len(r.creds))
	for i := range r.creds {
		ids[i] = r.creds[i].id
	}
	return storage.PasskeyRecord{UserID: r.userID, Handle: r.handle, CredentialIDs: ids, Data: data}, nil
}

// encode encodes the credentials (FORMAT.md §7):
//
//	record     = u8 version (1) ‖ u8 count ‖ credential × count
//	credential = u16 len ‖ id ‖ u16 len ‖ publicKey ‖ i32 alg ‖ u32 signCount ‖ u8 flags ‖
//	             u8 n ‖ (u8 len ‖ transport) × n ‖ u8 len ‖ attType ‖ u8 len ‖ attFormat ‖
//	             u8 len ‖ aaguid ‖ i64 created ‖ i64 lastUsed ‖ u8 len ‖ name ‖ u8 len ‖ prfSalt
//
// Integers are big-endian; times are Unix milliseconds (0: never).
func (r *record) encode() ([]byte, error) {
	if len(r.creds) > storage.MaxPasskeysPerUser {
		return nil, fmt.Errorf("%w: more than %d passkeys", ErrTooManyPasskeys, storage.MaxPasskeysPerUser)
	}
	b := []byte{recordVersion, byte(len(r.creds))}
	for i := range r.creds {
		c := &r.creds[i]
		if err := c.check(); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.id)))
		b = append(b, c.id...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.publicKey)))
		b = append(b, c.publicKey...)
		b = binary.BigEndian.AppendUint32(b, uint32(c.alg))
		b = binary.BigEndian.AppendUint32(b, c.signCount)
		b = append(b, c.flags, byte(len(c.transports)))
		for _, t := range c.transports {
			b = appendShort(b, []byte(t))
		}
		b = appendShort(b, []byte(c.attType))
		b = appendShort(b, []byte(c.attFormat))
		b = appendShort(b, c.aaguid)
		b = binary.BigEndian.AppendUint64(b, uint64(unixMilli(c.created)))
		b = binary.BigEndian.AppendUint64(b, uint64(unixMilli(c.lastUsed)))
		b = appendShort(b, []byte(c.name))
		b = appendShort(b, c.prfSalt)
	}
	if len(b) > storage.MaxPasskeyDataLen {
		return nil, fmt.Errorf("%w: passkey record of %d bytes", ErrTooManyPasskeys, len(b))
	}
	return b, nil
}

// check bounds c's fields as decode does, so that what is stored decodes.
func (c *credential) check() error {
	switch {
	case len(c.id) == 0 || len(c.id) > storage.MaxCredentialIDLen:
		return fmt.Errorf("%w: credential ID of %d bytes", ErrInvalidInput, len(c.id))
	case len(c.publicKey) == 0 || len(c.publicKey) > maxPublicKeyLen:
		return fmt.Errorf("%w: public key of %d bytes", ErrInvalidInput, len(c.publicKey))
	case c.flags&^knownFlags != 0:
		return fmt.Errorf("%w: unknown credential flags", ErrInvalidInput)
	case len(c.transports) > maxTransports:
		return fmt.Errorf("%w: %d transports", ErrInvalidInput, len(c.transports))
	case len(c.attType) > maxShortField || len(c.attFormat) > maxShortField:
		return fmt.Errorf("%w: attestation name too long", ErrInvalidInput)
	case len(c.aaguid) != 0 && len(c.aaguid) != aaguidLen:
		return fmt.Errorf("%w: AAGUID of %d bytes", ErrInvalidInput, len(c.aaguid))
	case len(c.prfSalt) != 0 && len(c.prfSalt) != prfSaltLen:
		return fmt.Errorf("%w: PRF salt of %d bytes", ErrInvalidInput, len(c.prfSalt))
	}
	for _, t := range c.transports {
		if len(t) == 0 || len(t) > maxShortField {
			return fmt.Errorf("%w: transport name of %d bytes", ErrInvalidInput, len(t))
		}
	}
	return checkName(c.name)
}

// checkName accepts 1 to MaxNameLen bytes of valid UTF-8 without control
// characters.
func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: a passkey's name is 1 to %d bytes of UTF-8", ErrInvalidInput, MaxNameLen)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return fmt.Errorf("%w: a passkey's name cannot hold control characters", ErrInvalidInput)
		}
	}
	return nil
}

func appendShort(b, field []byte) []byte {
	return append(append(b, byte(len(field))), field...)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// decodeRecord decodes a stored record strictly: every length in bounds,
// no unknown flag, no trailing byte, credential IDs unique and the same
// set as the store's index lists.
func decodeRecord(sr storage.PasskeyRecord) (*record, error) {
	if len(sr.Handle) != storage.PasskeyHandleLen {
		return nil, errMalformed
	}
	d := decoder{b: sr.Data}
	if d.u8() != recordVersion {
		return nil, errMalformed
	}
	n := int(d.u8())
	if n > storage.MaxPasskeysPerUser {
		return nil, errMalformed
	}
	r := &record{userID: sr.UserID, handle: sr.Handle, version: sr.Version, creds: make([]credential, 0, n)}
	for range n {
		var c credential
		c.id = d.bytes(int(d.u16()))
		c.publicKey = d.bytes(int(d.u16()))
		c.alg = int32(d.u32())
		c.signCount = d.u32()
		c.flags = d.u8()
		nt := int(d.u8())
		if nt > maxTransports {
			return nil, errMalformed
		}
		for range nt {
			c.transports = append(c.transports, string(d.short()))
		}
		c.attType = string(d.short())
		c.attFormat = string(d.short())
		c.aaguid = d.short()
		c.created = fromUnixMilli(int64(d.u64()))
		c.lastUsed = fromUnixMilli(int64(d.u64()))
		c.name = string(d.short())
		c.prfSalt = d.short()
		if d.err || c.check() != nil || r.find(c.id) >= 0 {
			return nil, errMalformed
		}
		if len(c.aaguid) == 0 {
			c.aaguid = nil
		}
		if len(c.prfSalt) == 0 {
			c.prfSalt = nil
		}
		r.creds = append(r.creds, c)
	}
	if d.err || len(d.b) != 0 || len(sr.CredentialIDs) != len(r.creds) {
		return nil, errMalformed
	}
	for _, id := range sr.CredentialIDs {
		if r.find(id) < 0 {
			return nil, errMalformed
		}
	}
	return r, nil
}

// decoder reads big-endian fields; a read past the end sets err and
// returns zeros.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) bytes(n int) []byte {
	if d.err || n > len(d.b) {
		d.err = true
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) short() []byte { return d.bytes(int(d.u8())) }

func (d *decoder) u8() uint8 {
	b := d.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) u16() uint16 {
	b := d.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (d *decoder) u32() uint32 {
	b := d.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (d *decoder) u64() uint64 {
	b := d.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
