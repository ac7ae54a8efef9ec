package session

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// kind tells cookie sessions from bearer (access-token) sessions and from
// the device records of refresh families.
type kind uint8

const (
	kindCookie kind = 1
	kindBearer kind = 2
	// kindFamily is a refresh family's device record (FORMAT.md §4.3): it
	// lists an API client in Devices for as long as its family lives. It
	// is never a session: no token names it, and the handler accepts only
	// the kind of the token it was given.
	kindFamily kind = 3
)

// Bounds on what a record keeps of the request.
const (
	maxIPLen        = 64
	maxUserAgentLen = 256
	maxCustodyLen   = 4 + 12 + 4 + 32 + 1 + 255*36 + 16
)

const (
	// recordVersion is the format of the session records that carry
	// authentication factors other than the password alone, or failed
	// second-factor attempts: version 4, version 3 with two more bytes
	// after the flags. Every other record is written in the oldest format
	// that holds it, which every instance of a rolling upgrade reads:
	// version 3 with a second-factor flag (pending, multi-factor), else
	// version 2 (the stable reference). Version 1 records are still read
	// (their reference is derived from the session ID, as it was).
	// Versions 1 to 3 decode with the factors FactorPassword and no
	// failures. A reader that predates a version refuses its records (the
	// session is absent there: fail closed), so a pending session is never
	// taken for a complete one by an older instance.
	recordVersion   = 4
	recordVersionV3 = 3
	recordVersionV2 = 2
	recordVersionV1 = 1
	// familyRecordVersion is the format of refresh-family records written
	// now: version 2 families have a device record (kindFamily), which
	// their rotations require. Version 1 families (written before device
	// records) get theirs at their next rotation.
	familyRecordVersion   = 2
	familyRecordVersionV1 = 1
	flagRemember          = 1 << 0
	flagFactorPending     = 1 << 1 // version 3 and 4: a second factor is still to be proved
	flagMultiFactor       = 1 << 2 // version 3 and 4: rated multi-factor
	knownFlagsV2          = flagRemember
	knownFlags            = flagRemember | flagFactorPending | flagMultiFactor
	recordFixedLenV1      = 1 + 1 + 1 + 5*8
	recordFixedLen        = recordFixedLenV1 + refLen
	// refLen is the length of a session's stable reference: 96 bits.
	refLen = 12
	// maxStoredFailures bounds the failed second-factor attempts a
	// record may hold (Config.MaxSecondFactorFailures is at most 100, and
	// the session ends when it is reached).
	maxStoredFailures = maxSecondFactorFailures
)

var errMalformed = errors.New("session: malformed session record")

// record is what a session keeps in storage.Session.Data (FORMAT.md §4.3).
// Times are Unix milliseconds.
type record struct {
	kind      kind
	remember  bool
	pending   bool    // the session waits for its second factor (SES-13)
	mfa       bool    // rated multi-factor: SecondFactorVerified, or a multi-factor login
	factors   Factors // what authenticated the session; 0 is read as FactorPassword
	failures  uint8   // failed second-factor attempts of a pending session (SecondFactorFailed)
	created   int64
	authTime  int64
	lastSeen  int64
	deadline  int64  // absolute: the session ends here whatever its activity
	idleMS    int64  // idle timeout of this session
	ref       []byte // refLen bytes: the session's reference, the same for its whole life
	family    []byte // bearer sessions and device records: the refresh family's store ID; else empty
	ip        string
	userAgent string
	custody   []byte // the vault's keys sealed under the token's custody key; empty while locked
}

func (r *record) encode() []byte {
	b := make([]byte, 0, recordFixedLen+2+1+len(r.family)+1+len(r.ip)+2+len(r.userAgent)+2+len(r.custody))
	var flags byte
	if r.remember {
		flags |= flagRemember
	}
	if r.pending {
		flags |= flagFactorPending
	}
	if r.mfa {
		flags |= flagMultiFactor
	}
	version := byte(recordVersionV2)
	if r.pending || r.mfa {
		version = recordVersionV3
	}
	if r.v4() {
		version = recordVersion
	}
	b = append(b, version, byte(r.kind), flags)
	if version == recordVersion {
		b = append(b, byte(r.factors), r.failures)
	}
	for _, v := range []int64{r.created, r.authTime, r.lastSeen, r.deadline, r.idleMS} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = append(b, r.ref...)
	b = append(b, byte(len(r.family)))
	b = append(b, r.family...)
	b = append(b, byte(len(r.ip)))
	b = append(b, r.ip...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.userAgent)))
	b = append(b, r.userAgent...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.custody)))
	return append(b, r.custody...)
}

// decodeRecord decodes the record of the session with this store ID
// (which gives a version 1 record its reference).
func decodeRecord(id, b []byte) (*record, error) {
	if len(b) < recordFixedLenV1 || b[0] < recordVersionV1 || b[0] > recordVersion ||
		(b[0] != recordVersionV1 && len(b) < recordFixedLen) || (b[0] == recordVersion && len(b) < recordFixedLen+2) {
		return nil, errMalformed
	}
	known := byte(knownFlags)
	if b[0] < recordVersionV3 {
		known = knownFlagsV2
	}
	r := &record{kind: kind(b[1]), remember: b[2]&flagRemember != 0, pending: b[2]&flagFactorPending != 0, mfa: b[2]&flagMultiFactor != 0,
		factors: FactorPassword}
	if (r.kind != kindCookie && r.kind != kindBearer && r.kind != kindFamily) || b[2]&^known != 0 ||
		(r.pending && (r.mfa || r.kind != kindCookie)) || (b[0] == recordVersionV3 && !r.pending && !r.mfa) {
		return nil, errMalformed
	}
	p := b[3:]
	if b[0] == recordVersion {
		r.factors, r.failures = Factors(b[3]), b[4]
		p = b[5:]
		// Only what versions 2 and 3 cannot hold is version 4; a
		// multi-factor set is rated so; failures count only while the
		// second factor is pending.
		if !r.factors.valid() || !r.v4() || (r.factors.MultiFactor() && !r.mfa) ||
			(r.failures != 0 && !r.pending) || r.failures > maxStoredFailures {
			return nil, errMalformed
		}
	}
	for _, v := range []*int64{&r.created, &r.authTime, &r.lastSeen, &r.deadline, &r.idleMS} {
		*v = int64(binary.BigEndian.Uint64(p))
		p = p[8:]
	}
	if b[0] != recordVersionV1 {
		r.ref = append([]byte(nil), p[:refLen]...)
		p = p[refLen:]
	} else {
		if len(id) < refLen {
			return nil, errMalformed
		}
		// Before version 2 the reference was the ID's first 96 bits.
		r.ref = append([]byte(nil), id[:refLen]...)
	}
	take := func(n int) []byte {
		if n > len(p) {
			return nil
		}
		out := p[:n:n]
		p = p[n:]
		return out
	}
	var ok bool
	field8 := func(max int) []byte {
		if len(p) < 1 || int(p[0]) > max {
			ok = false
			return nil
		}
		n := int(p[0])
		p = p[1:]
		v := take(n)
		if v == nil && n > 0 {
			ok = false
		}
		return v
	}
	field16 := func(max int) []byte {
		if len(p) < 2 || int(binary.BigEndian.Uint16(p)) > max {
			ok = false
			return nil
		}
		n := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		v := take(n)
		if v == nil && n > 0 {
			ok = false
		}
		return v
	}
	ok = true
	family := field8(32)
	ip := field8(maxIPLen)
	ua := field16(maxUserAgentLen)
	custody := field16(maxCustodyLen)
	if !ok || len(p) != 0 || (len(family) != 0 && len(family) != 32) ||
		(r.kind != kindCookie) != (len(family) == 32) || (r.kind == kindFamily && len(custody) != 0) ||
		!utf8.Valid(ua) || r.idleMS <= 0 || r.created > r.deadline {
		return nil, errMalformed
	}
	r.family = append([]byte(nil), family...)
	r.ip, r.userAgent = string(ip), string(ua)
	if len(custody) > 0 {
		r.custody = append([]byte(nil), custody...)
	}
	return r, nil
}

// v4 reports whether the record needs version 4: factors other than the
// password alone, or failed second-factor attempts.
func (r *record) v4() bool {
	return (r.factors != 0 && r.factors != FactorPassword) || r.failures != 0
}

// sessionFactors is what authenticated the session (FactorPassword for a
// record that does not say).
func (r *record) sessionFactors() Factors {
	if r.factors == 0 {
		return FactorPassword
	}
	return r.factors
}

// expiresAt is when the store may forget the session: at its idle or its
// absolute deadline, whichever comes first.
func (r *record) expiresAt() time.Time {
	return time.UnixMilli(min(r.deadline, r.lastSeen+r.idleMS))
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// and drops invalid UTF-8.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
