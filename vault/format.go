package vault

import (
	"encoding/binary"
	"fmt"

	"github.com/keyhold/keyhold/kdf"
)

// Labels separating every use of a key (FORMAT.md §3).
const (
	labelSlotAAD     = "keyhold/v1/vault/slot\x00"
	labelRecordAAD   = "keyhold/v1/vault/record\x00"
	labelRecordKey   = "keyhold/v1/vault/record-key"
	labelRecoveryKEK = "keyhold/v1/vault/recovery-kek"
	labelRetiredKEK  = "keyhold/v1/vault/retired-kek"
	labelRetiredAAD  = "keyhold/v1/vault/retired\x00"
)

// vaultMagic starts every encoded vault record: "KHV" and format version 1.
var vaultMagic = [4]byte{'K', 'H', 'V', 1}

// SlotKind says what unlocks a key slot.
type SlotKind uint8

// The slot kinds. Values are stored; never renumber them.
const (
	// SlotPassphrase is unlocked by the user's passphrase through the KDF.
	SlotPassphrase SlotKind = 1
	// SlotRecovery is unlocked by a recovery key; using it consumes it.
	SlotRecovery SlotKind = 2
	// SlotSecret is unlocked by a high-entropy secret the application
	// supplies, such as a passkey's PRF output (reserved for package
	// passkey).
	SlotSecret SlotKind = 3
	// SlotWrapper is unlocked by an application-supplied KeyWrapper (a
	// KMS, an OS keychain).
	SlotWrapper SlotKind = 4
)

// String names the kind.
func (k SlotKind) String() string {
	switch k {
	case SlotPassphrase:
		return "passphrase"
	case SlotRecovery:
		return "recovery"
	case SlotSecret:
		return "secret"
	case SlotWrapper:
		return "wrapper"
	}
	return fmt.Sprintf("SlotKind(%d)", uint8(k))
}

// KDF algorithm ids in passphrase slot parameters.
const (
	algArgon2id     = 1
	algPBKDF2SHA256 = 2
	algPBKDF2SHA512 = 3
)

const (
	slotIDLen    = 16
	masterKeyLen = 32
	gcmNonceLen  = 12
	gcmTagLen    = 16
	maxSlots     = 64
	maxSaltLen   = 64
	maxParamsLen = 1024
	maxWrapped   = 4096
	maxRetired   = 16
	// wrappedKeyLen is nonce ‖ AES-256-GCM(master key) ‖ tag.
	wrappedKeyLen = gcmNonceLen + masterKeyLen + gcmTagLen
)

// slot is one decoded key slot. header is the exact encoding of kind, id,
// key version and params, which the wrap's associated data binds.
type slot struct {
	kind       SlotKind
	id         [slotIDLen]byte
	keyVersion uint32
	params     []byte
	wrapped    []byte
}

// record is a decoded vault record.
type record struct {
	keyVersion uint32
	slots      []slot
	retired    []retiredKey
}

// retiredKey is an older master key, kept decrypt-only after a rotation,
// sealed under the current master key.
type retiredKey struct {
	version uint32
	sealed  []byte
}

// retiredAAD binds a retired key to its user, the current key version and
// its own version.
func retiredAAD(userID string, current, retired uint32) []byte {
	b := make([]byte, 0, len(labelRetiredAAD)+2+len(userID)+8)
	b = append(b, labelRetiredAAD...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(userID)))
	b = append(b, userID...)
	b = binary.BigEndian.AppendUint32(b, current)
	return binary.BigEndian.AppendUint32(b, retired)
}

func (s *slot) header() []byte {
	b := make([]byte, 0, 1+slotIDLen+4+2+len(s.params))
	b = append(b, byte(s.kind))
	b = append(b, s.id[:]...)
	b = binary.BigEndian.AppendUint32(b, s.keyVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.params)))
	return append(b, s.params...)
}

// slotAAD is the associated data of a slot's wrap: label ‖ user ‖ header.
func slotAAD(userID string, s *slot) []byte {
	h := s.header()
	b := make([]byte, 0, len(labelSlotAAD)+2+len(userID)+len(h))
	b = append(b, labelSlotAAD...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(userID)))
	b = append(b, userID...)
	return append(b, h...)
}

func (r *record) encode() []byte {
	b := append([]byte(nil), vaultMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, r.keyVersion)
	b = append(b, byte(len(r.slots)))
	for i := range r.slots {
		s := &r.slots[i]
		b = append(b, s.header()...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.wrapped)))
		b = append(b, s.wrapped...)
	}
	if len(r.retired) > 0 {
		b = append(b, byte(len(r.retired)))
		for _, k := range r.retired {
			b = binary.BigEndian.AppendUint32(b, k.version)
			b = binary.BigEndian.AppendUint16(b, uint16(len(k.sealed)))
			b = append(b, k.sealed...)
		}
	}
	return b
}

// errMalformed is wrapped into ErrUnlockFailed by callers; it never
// reaches users on its own.
var errMalformed = fmt.Errorf("%w: malformed vault record", ErrUnlockFailed)

// decodeRecord parses a vault record strictly: every length is checked
// against the remaining input and its bound, and trailing bytes are an
// error, so that every record has exactly one encoding.
func decodeRecord(data []byte) (*record, error) {
	d := decoder{b: data}
	var magic [4]byte
	copy(magic[:], d.take(4))
	if d.err || magic != vaultMagic {
		return nil, errMalformed
	}
	r := &record{keyVersion: d.u32()}
	n := int(d.u8())
	if d.err || r.keyVersion == 0 || n == 0 || n > maxSlots {
		return nil, errMalformed
	}
	r.slots = make([]slot, n)
	for i := range r.slots {
		s := &r.slots[i]
		s.kind = SlotKind(d.u8())
		copy(s.id[:], d.take(slotIDLen))
		s.keyVersion = d.u32()
		s.params = d.bytes16(maxParamsLen)
		s.wrapped = d.bytes16(maxWrapped)
		if d.err || s.kind < SlotPassphrase || s.kind > SlotWrapper || s.keyVersion == 0 {
			return nil, errMalformed
		}
	}
	if len(d.b) > 0 { // the optional retired-key section
		n := int(d.u8())
		if n == 0 || n > maxRetired {
			return nil, errMalformed
		}
		r.retired = make([]retiredKey, n)
		for i := range r.retired {
			k := &r.retired[i]
			k.version = d.u32()
			k.sealed = d.bytes16(maxWrapped)
			if d.err || k.version == 0 || k.version >= r.keyVersion || (i > 0 && k.version <= r.retired[i-1].version) {
				return nil, errMalformed
			}
		}
	}
	if d.err || len(d.b) != 0 {
		return nil, errMalformed
	}
	return r, nil
}

// decoder reads big-endian fields; any short read sets err and yields
// zeros, so callers check err once after a group of reads.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) take(n int) []byte {
	if d.err || n < 0 || len(d.b) < n {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) bytes16(max int) []byte {
	n := int(d.u16())
	if n > max {
		d.err = true
		return nil
	}
	return append([]byte(nil), d.take(n)...)
}

func (d *decoder) bytes8(max int) []byte {
	n := int(d.u8())
	if n > max {
		d.err = true
		return nil
	}
	return append([]byte(nil), d.take(n)...)
}

// passphraseParams encodes a passphrase slot's KDF parameters and salt:
// alg u8 ‖ t u32 ‖ m u32 ‖ p u8 ‖ iterations u32 ‖ saltLen u8 ‖ salt.
func encodePassphraseParams(p kdf.Params, salt []byte) []byte {
	var alg byte
	switch p.Algorithm {
	case kdf.Argon2id:
		alg = algArgon2id
	case kdf.PBKDF2SHA256:
		alg = algPBKDF2SHA256
	case kdf.PBKDF2SHA512:
		alg = algPBKDF2SHA512
	}
	b := []byte{alg}
	b = binary.BigEndian.AppendUint32(b, p.Time)
	b = binary.BigEndian.AppendUint32(b, p.MemoryKiB)
	b = append(b, p.Threads)
	b = binary.BigEndian.AppendUint32(b, p.Iterations)
	b = append(b, byte(len(salt)))
	return append(b, salt...)
}

func decodePassphraseParams(b []byte) (kdf.Params, []byte, error) {
	d := decoder{b: b}
	alg := d.u8()
	p := kdf.Params{Time: d.u32(), MemoryKiB: d.u32(), Threads: d.u8(), Iterations: d.u32(), KeyLen: masterKeyLen}
	salt := d.bytes8(maxSaltLen)
	if d.err || len(d.b) != 0 {
		return kdf.Params{}, nil, errMalformed
	}
	switch alg {
	case algArgon2id:
		p.Algorithm = kdf.Argon2id
	case algPBKDF2SHA256:
		p.Algorithm = kdf.PBKDF2SHA256
	case algPBKDF2SHA512:
		p.Algorithm = kdf.PBKDF2SHA512
	default:
		return kdf.Params{}, nil, errMalformed
	}
	p.SaltLen = len(salt)
	return p, salt, nil
}
