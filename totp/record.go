package totp

import (
	"encoding/binary"
	"slices"
)

// Bounds of a factor record.
const (
	// MaxAuthenticators is the most TOTP authenticators a user may have.
	MaxAuthenticators = 8
	// MaxNameLen is the longest authenticator name, in bytes.
	MaxNameLen = 64
	// MaxRecoveryCodes is the most recovery codes in a set.
	MaxRecoveryCodes = 16
	// MinRecoveryCodes is the fewest recovery codes in a set.
	MinRecoveryCodes = 10

	recordFormat    = 1
	credIDLen       = 16
	recoverySaltLen = 16
	recoveryHashLen = 32
	maxSealedLen    = 1024
	maxRetired      = 16
)

// retiredID is an authenticator removed (or replaced) at a time (Unix ms).
type retiredID struct {
	id [credIDLen]byte
	at int64
}

// retire records that the authenticator id was removed at now.
func (r *factorRecord) retire(id [credIDLen]byte, now int64) {
	r.removals++
	horizon := now - MaxSetupLifetime.Milliseconds()
	r.retired = slices.DeleteFunc(r.retired, func(x retiredID) bool { return x.at < horizon })
	r.retired = append(r.retired, retiredID{id: id, at: now})
	if n := len(r.retired); n > maxRetired {
		r.retired = slices.Delete(r.retired, 0, n-maxRetired)
	}
}

// algorithm codes in the record (FORMAT.md §6.1).
const (
	algSHA1   = 1
	algSHA256 = 2
	algSHA512 = 3
)

// cred is one TOTP authenticator as the record keeps it.
type cred struct {
	id       [credIDLen]byte
	created  int64 // Unix ms
	lastUsed int64 // Unix ms of the last accepted code (0: none yet)
	lastStep uint64
	alg      byte
	digits   byte
	period   uint16 // seconds
	name     string
	sealed   []byte // the secret, sealed by the Sealer
}

// factorRecord is what package totp keeps per user in
// storage.FactorRecord.Data (FORMAT.md §6.1).
type factorRecord struct {
	creds []cred
	// removals counts the authenticators ever removed or replaced, and
	// retired lists the latest of them (at most maxRetired, none older
	// than MaxSetupLifetime): a setup token whose authenticator was
	// removed cannot show or enroll its secret again (see used).
	removals uint64
	retired  []retiredID
	// recovery codes: generated is when the set was made (Unix ms, 0: no
	// set); hashes are those of the codes not used yet.
	generated int64
	salt      [recoverySaltLen]byte
	hashes    [][recoveryHashLen]byte
	total     byte // codes in the set when generated
}

func (r *factorRecord) encode() []byte {
	b := []byte{recordFormat, byte(len(r.creds))}
	for _, c := range r.creds {
		b = append(b, c.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(c.created))
		b = binary.BigEndian.AppendUint64(b, uint64(c.lastUsed))
		b = binary.BigEndian.AppendUint64(b, c.lastStep)
		b = append(b, c.alg, c.digits)
		b = binary.BigEndian.AppendUint16(b, c.period)
		b = append(b, byte(len(c.name)))
		b = append(b, c.name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.sealed)))
		b = append(b, c.sealed...)
	}
	b = binary.BigEndian.AppendUint64(b, r.removals)
	b = append(b, byte(len(r.retired)))
	for _, x := range r.retired {
		b = append(b, x.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(x.at))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.generated))
	b = append(b, r.salt[:]...)
	b = append(b, r.total, byte(len(r.hashes)))
	for _, h := range r.hashes {
		b = append(b, h[:]...)
	}
	return b
}

type reader struct {
	b  []byte
	ok bool
}

func (r *reader) take(n int) []byte {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte         { return r.take(1)[0] }
func (r *reader) u16() uint16      { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u64() uint64      { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) i64() int64       { return int64(r.u64()) }
func (r *reader) str(n int) string { return string(r.take(n)) }

func decodeRecord(b []byte) (*factorRecord, error) {
	r := &reader{b: b, ok: true}
	if r.u8() != recordFormat {
		return nil, ErrMalformedRecord
	}
	n := int(r.u8())
	if n > MaxAuthenticators {
		return nil, ErrMalformedRecord
	}
	rec := &factorRecord{}
	for range n {
		var c cred
		copy(c.id[:], r.take(credIDLen))
		c.created, c.lastUsed, c.lastStep = r.i64(), r.i64(), r.u64()
		c.alg, c.digits, c.period = r.u8(), r.u8(), r.u16()
		c.name = r.str(int(r.u8()))
		sealedLen := int(r.u16())
		if sealedLen > maxSealedLen {
			return nil, ErrMalformedRecord
		}
		c.sealed = slices.Clone(r.take(sealedLen))
		if !r.ok || !validParams(c.alg, c.digits, c.period) || len(c.name) > MaxNameLen {
			return nil, ErrMalformedRecord
		}
		rec.creds = append(rec.creds, c)
	}
	rec.removals = r.u64()
	nRetired := int(r.u8())
	if nRetired > maxRetired || uint64(nRetired) > rec.removals {
		return nil, ErrMalformedRecord
	}
	for range nRetired {
		var x retiredID
		copy(x.id[:], r.take(credIDLen))
		x.at = r.i64()
		rec.retired = append(rec.retired, x)
	}
	rec.generated = r.i64()
	copy(rec.salt[:], r.take(recoverySaltLen))
	rec.total = r.u8()
	left := int(r.u8())
	if left > int(rec.total) || rec.total > MaxRecoveryCodes {
		return nil, ErrMalformedRecord
	}
	for range left {
		var h [recoveryHashLen]byte
		copy(h[:], r.take(recoveryHashLen))
		rec.hashes = append(rec.hashes, h)
	}
	if !r.ok || len(r.b) != 0 {
		return nil, ErrMalformedRecord
	}
	return rec, nil
}

func validParams(alg, digits byte, period uint16) bool {
	return alg >= algSHA1 && alg <= algSHA512 && (digits == 6 || digits == 8) &&
		period >= minPeriodSeconds && period <= maxPeriodSeconds
}

// appendString16 appends s with a 16-bit length prefix.
func appendString16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// secretAD binds a sealed secret to its user, authenticator and purpose.
func secretAD(userID string, id [credIDLen]byte) []byte {
	b := appendString16(nil, "keyhold/totp/secret/v1")
	b = appendString16(b, userID)
	return append(b, id[:]...)
}

// setupAD binds a setup token to its user and purpose.
func setupAD(userID string) []byte {
	b := appendString16(nil, "keyhold/totp/setup/v1")
	return appendString16(b, userID)
}
