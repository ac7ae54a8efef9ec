package vault

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/keyhold/keyhold/storage"
)

// Custody blob (FORMAT.md §3.6): "KHC" ‖ 0x01 ‖ nonce ‖ AES-256-GCM(
// custody key, u32 key version ‖ master key ‖ u8 n ‖ n × (u32 version ‖
// retired key)) with associated data label ‖ u16 len(user) ‖ user ‖
// binding.
const (
	custodyMagic     = "KHC\x01"
	labelCustodyAAD  = "keyhold/v1/vault/custody\x00"
	maxCustodyBind   = 256
	custodyEntryLen  = 4 + masterKeyLen
	maxCustodyRetire = 255
)

// CustodyKeyLen is the length of the key that SealForCustody and
// OpenCustody take.
const CustodyKeyLen = 32

// SealForCustody returns the vault's keys (the master key and any retired
// ones) sealed under custodyKey, a 32-byte key that the caller holds
// apart from where it stores the result. binding (at most 256 bytes)
// names the one place the result belongs to, such as a session's ID: it
// is bound as associated data together with the user ID, and OpenCustody
// needs the same value.
//
// This is a low-level function that most applications will not call:
// package session uses it to keep a user unlocked between requests, with
// the custody key derived from the session's cookie and the sealed keys in
// the session store, so that neither the store nor an old cookie alone
// opens them.
func (u *Unlocked) SealForCustody(custodyKey, binding []byte) ([]byte, error) {
	if u == nil {
		return nil, errNilUnlocked
	}
	if len(custodyKey) != CustodyKeyLen || len(binding) > maxCustodyBind {
		return nil, fmt.Errorf("%w: custody key must be %d bytes and binding at most %d", ErrInvalidInput, CustodyKeyLen, maxCustodyBind)
	}
	u.mu.RLock()
	if u.mk == nil {
		u.mu.RUnlock()
		return nil, ErrLocked
	}
	if len(u.retired) > maxCustodyRetire {
		u.mu.RUnlock()
		return nil, fmt.Errorf("%w: too many retired keys", ErrInvalidInput)
	}
	payload := make([]byte, 0, custodyEntryLen+1+len(u.retired)*custodyEntryLen)
	payload = binary.BigEndian.AppendUint32(payload, u.version)
	payload = append(payload, u.mk...)
	payload = append(payload, byte(len(u.retired)))
	for _, v := range slices.Sorted(maps.Keys(u.retired)) {
		payload = binary.BigEndian.AppendUint32(payload, v)
		payload = append(payload, u.retired[v]...)
	}
	u.mu.RUnlock()
	defer clear(payload)

	aead, err := newGCM(custodyKey)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(custodyMagic)+gcmNonceLen, len(custodyMagic)+gcmNonceLen+len(payload)+gcmTagLen)
	copy(out, custodyMagic)
	nonce := out[len(custodyMagic):]
	rand.Read(nonce)
	return aead.Seal(out, nonce, payload, custodyAAD(u.userID, binding)), nil
}

// OpenCustody reverses SealForCustody: it returns the user's vault,
// unlocked, from keys sealed under custodyKey with this user ID and
// binding. Every failure is ErrUnlockFailed.
//
// This is a low-level function that most applications will not call; see
// SealForCustody.
func OpenCustody(userID string, sealed, custodyKey, binding []byte) (*Unlocked, error) {
	if userID == "" || len(userID) > storage.MaxUserIDLen || len(custodyKey) != CustodyKeyLen ||
		len(binding) > maxCustodyBind || len(sealed) < len(custodyMagic)+gcmNonceLen+gcmTagLen ||
		string(sealed[:len(custodyMagic)]) != custodyMagic {
		return nil, ErrUnlockFailed
	}
	aead, err := newGCM(custodyKey)
	if err != nil {
		return nil, ErrUnlockFailed
	}
	nonce := sealed[len(custodyMagic) : len(custodyMagic)+gcmNonceLen]
	payload, err := aead.Open(nil, nonce, sealed[len(custodyMagic)+gcmNonceLen:], custodyAAD(userID, binding))
	if err != nil {
		return nil, ErrUnlockFailed
	}
	defer clear(payload)
	if len(payload) < custodyEntryLen+1 {
		return nil, ErrUnlockFailed
	}
	version := binary.BigEndian.Uint32(payload)
	n := int(payload[custodyEntryLen])
	rest := payload[custodyEntryLen+1:]
	if len(rest) != n*custodyEntryLen {
		return nil, ErrUnlockFailed
	}
	var retired map[uint32][]byte
	if n > 0 {
		retired = make(map[uint32][]byte, n)
	}
	for i := range n {
		e := rest[i*custodyEntryLen:]
		v := binary.BigEndian.Uint32(e)
		if _, dup := retired[v]; dup || v == version {
			clearAll(retired)
			return nil, ErrUnlockFailed
		}
		retired[v] = append([]byte(nil), e[4:custodyEntryLen]...)
	}
	mk := append([]byte(nil), payload[4:custodyEntryLen]...)
	return newUnlocked(userID, version, mk, retired), nil
}

func custodyAAD(userID string, binding []byte) []byte {
	b := make([]byte, 0, len(labelCustodyAAD)+2+len(userID)+len(binding))
	b = append(b, labelCustodyAAD...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(userID)))
	b = append(b, userID...)
	return append(b, binding...)
}

func clearAll(keys map[uint32][]byte) {
	for _, k := range keys {
		clear(k)
	}
}
