package vault

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// Outside review of secret slots (kind 3).

// Defense holds: AddSecretSlot replaces only a secret slot of the same
// ID. A recovery slot (and the passphrase slot) forged to carry the very
// slot ID that SecretSlotID gives a credential are kept, and the new
// secret slot is added beside them.
func TestAttackSecretSlotReplacesOnlySecretSlots(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "wes", "wes's passphrase")
	if _, err := v.RegenerateRecoveryKeys(bg, u, 1); err != nil {
		t.Fatal(err)
	}
	cred := []byte("attacker-chosen credential ID")
	sid := secretSlotID(cred)
	// Give the passphrase and the recovery slot the credential's slot ID,
	// re-wrapping them under the new header (they stay valid slots).
	rec, err := store.GetVault(bg, "wes")
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := u.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	defer clear(mk)
	for i := range r.slots {
		s := &r.slots[i]
		old := *s
		kek := rewrapKEK(t, v, "wes", &old, []byte("wes's passphrase"))
		if kek == nil {
			// The recovery slot: only its ID and kind matter here (its
			// wrap no longer matches the header, which is not checked).
			s.id = sid
			continue
		}
		s.id = sid
		wrapped, err := wrapKey(kek, mk, slotAAD("wes", s))
		clear(kek)
		if err != nil {
			t.Fatal(err)
		}
		s.wrapped = wrapped
	}
	if err := store.PutVault(bg, "wes", r.encode(), rec.Version); err != nil {
		t.Fatal(err)
	}
	if err := v.AddSecretSlot(bg, u, cred, prf("wes")); err != nil {
		t.Fatalf("AddSecretSlot: %v", err)
	}
	slots, err := v.Slots(bg, "wes")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[SlotKind]int{}
	for _, s := range slots {
		kinds[s.Kind]++
	}
	if kinds[SlotPassphrase] != 1 || kinds[SlotRecovery] != 1 || kinds[SlotSecret] != 1 || len(slots) != 3 {
		t.Fatalf("slots after AddSecretSlot over a colliding ID: %+v", slots)
	}
	if _, err := v.Unlock(bg, "wes", []byte("wes's passphrase")); err != nil {
		t.Fatalf("passphrase slot lost to a secret slot of the same ID: %v", err)
	}
	if _, err := v.UnlockWithSecret(bg, "wes", cred, prf("wes")); err != nil {
		t.Fatalf("UnlockWithSecret: %v", err)
	}
}

// rewrapKEK returns the KEK of a passphrase slot (nil for other kinds).
func rewrapKEK(t *testing.T, v *Vault, userID string, s *slot, passphrase []byte) []byte {
	t.Helper()
	if s.kind != SlotPassphrase {
		return nil
	}
	p, salt, err := decodePassphraseParams(s.params)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := v.derive(bg, passphrase, salt, p)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// Defense holds: the KEK's info is unambiguous where the user ID ends and
// the credential ID begins (the user ID is length-prefixed), and the slot
// ID of a credential ID is not that of any prefix or extension of it.
func TestAttackSecretKEKInfoUnambiguous(t *testing.T) {
	t.Parallel()
	if bytes.Equal(secretKEKInfo("a", []byte("bc")), secretKEKInfo("ab", []byte("c"))) {
		t.Fatal(`KEK info of ("a", "bc") equals that of ("ab", "c")`)
	}
	if secretSlotID([]byte("ab")) == secretSlotID([]byte("abc")) {
		t.Fatal("slot IDs of a prefix collide")
	}
	salt := make([]byte, secretSaltLen)
	secret := prf("x")
	k1, err := secretKEK(secret, salt, "a", []byte("bc"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := secretKEK(secret, salt, "ab", []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1, k2) {
		t.Fatal("one KEK for two (user, credential) splits")
	}
}

// Defense holds: a secret slot added through an Unlocked value of a key
// version that a rotation retired is refused (ErrConflict), so a stale
// session cannot plant a slot; the rotation drops existing secret slots
// and the old secret no longer opens; the maximal ID and secret work.
func TestAttackSecretSlotStaleUnlockedAndBounds(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "xan", "xan's passphrase")
	longID := bytes.Repeat([]byte{0xff}, MaxSecretIDLen)
	longSecret := bytes.Repeat([]byte{0x5a}, MaxSecretLen)
	if err := v.AddSecretSlot(bg, u, longID, longSecret); err != nil {
		t.Fatalf("AddSecretSlot at the bounds: %v", err)
	}
	if _, err := v.UnlockWithSecret(bg, "xan", longID, longSecret); err != nil {
		t.Fatalf("UnlockWithSecret at the bounds: %v", err)
	}
	// One byte less of the secret (a truncation) does not open.
	if _, err := v.UnlockWithSecret(bg, "xan", longID, longSecret[:MaxSecretLen-1]); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("truncated secret: %v, want ErrUnlockFailed", err)
	}
	// Nor does the ID with its last byte cut.
	if _, err := v.UnlockWithSecret(bg, "xan", longID[:MaxSecretIDLen-1], longSecret); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("truncated ID: %v, want ErrUnlockFailed", err)
	}
	if _, _, err := v.RotateMasterKey(bg, "xan", []byte("xan's passphrase")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.UnlockWithSecret(bg, "xan", longID, longSecret); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("secret slot after rotation: %v, want ErrUnlockFailed", err)
	}
	if err := v.AddSecretSlot(bg, u, []byte("planted"), prf("stale")); !errors.Is(err, ErrConflict) {
		t.Fatalf("AddSecretSlot with a retired Unlocked: %v, want ErrConflict", err)
	}
	if _, err := v.UnlockWithSecret(bg, "xan", []byte("planted"), prf("stale")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("planted slot opens: %v", err)
	}
}

// pausingStore holds every GetVault, once armed, until n of them have
// read: the n callers then all hold the same version when they write.
type pausingStore struct {
	*memstore.Store
	mu      sync.Mutex
	cond    *sync.Cond
	armed   bool
	n, seen int
}

func newPausingStore() *pausingStore {
	p := &pausingStore{Store: memstore.New()}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pausingStore) arm(n int) {
	p.mu.Lock()
	p.armed, p.n, p.seen = true, n, 0
	p.mu.Unlock()
}

func (p *pausingStore) GetVault(ctx context.Context, userID string) (storage.VaultRecord, error) {
	r, err := p.Store.GetVault(ctx, userID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.armed {
		return r, err
	}
	p.seen++
	if p.seen >= p.n {
		p.armed = false
		p.cond.Broadcast()
		return r, err
	}
	for p.armed {
		p.cond.Wait()
	}
	return r, err
}

// Defense holds: AddSecretSlot racing another change of the same vault
// (a second AddSecretSlot, RemoveSlot, RegenerateRecoveryKeys,
// RotateMasterKey), with both having read the same record before either
// writes (forced by a store that holds the reads), never loses an update
// in silence: exactly one wins, the other returns ErrConflict, and the
// stored slots are the winner's. A secret slot never survives a rotation
// that won, and a rotation that lost leaves the secret slot working.
func TestAttackSecretSlotRacesOtherChanges(t *testing.T) {
	t.Parallel()
	const pass = "yul's passphrase"
	cred, other := []byte("credential-race"), []byte("credential-other")
	rivals := map[string]func(v *Vault, u *Unlocked, recoveryID string) error{
		"AddSecretSlot": func(v *Vault, u *Unlocked, _ string) error {
			return v.AddSecretSlot(bg, u, other, prf("other"))
		},
		"RemoveSlot": func(v *Vault, u *Unlocked, recoveryID string) error {
			return v.RemoveSlot(bg, u, recoveryID)
		},
		"RegenerateRecoveryKeys": func(v *Vault, u *Unlocked, _ string) error {
			_, err := v.RegenerateRecoveryKeys(bg, u, 2)
			return err
		},
		"RotateMasterKey": func(v *Vault, _ *Unlocked, _ string) error {
			_, _, err := v.RotateMasterKey(bg, "yul", []byte(pass))
			return err
		},
	}
	for name, rival := range rivals {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newPausingStore()
			v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
			if err != nil {
				t.Fatal(err)
			}
			u := mustCreate(t, v, "yul", pass)
			if _, err := v.RegenerateRecoveryKeys(bg, u, 1); err != nil {
				t.Fatal(err)
			}
			slots, err := v.Slots(bg, "yul")
			if err != nil {
				t.Fatal(err)
			}
			var recoveryID string
			for _, s := range slots {
				if s.Kind == SlotRecovery {
					recoveryID = s.ID
				}
			}
			store.arm(2)
			var wg sync.WaitGroup
			var addErr, rivalErr error
			wg.Go(func() { addErr = v.AddSecretSlot(bg, u, cred, prf("race")) })
			wg.Go(func() { rivalErr = rival(v, u, recoveryID) })
			wg.Wait()
			if (addErr == nil) == (rivalErr == nil) {
				t.Fatalf("AddSecretSlot: %v; %s: %v; want exactly one to succeed", addErr, name, rivalErr)
			}
			lost := addErr
			if lost == nil {
				lost = rivalErr
			}
			if !errors.Is(lost, ErrConflict) {
				t.Fatalf("the loser's error: %v, want ErrConflict", lost)
			}
			_, openErr := v.UnlockWithSecret(bg, "yul", cred, prf("race"))
			if addErr == nil && openErr != nil {
				t.Fatalf("AddSecretSlot won but its slot does not open: %v", openErr)
			}
			if addErr != nil && !errors.Is(openErr, ErrUnlockFailed) {
				t.Fatalf("AddSecretSlot lost but its slot opens: %v", openErr)
			}
			if _, err := v.Unlock(bg, "yul", []byte(pass)); err != nil {
				t.Fatalf("passphrase after the race: %v", err)
			}
		})
	}
}

// Defense holds: should two credential IDs ever share a slot ID (its 16
// bytes are a truncated hash), neither credential's secret opens the
// other's slot: the KEK's info holds the whole credential ID, not the slot
// ID. The collision is forged here by giving B's slot A's slot ID (and
// re-wrapping it under B's KEK for that header, as a real collision would
// have it).
func TestAttackSecretSlotIDCollisionOpensNothing(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "zed", "zed's passphrase")
	a, b := []byte("credential-A"), []byte("credential-B")
	if err := v.AddSecretSlot(bg, u, b, prf("B")); err != nil {
		t.Fatal(err)
	}
	rec, err := store.GetVault(bg, "zed")
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := u.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	defer clear(mk)
	for i := range r.slots {
		s := &r.slots[i]
		if s.kind != SlotSecret {
			continue
		}
		s.id = secretSlotID(a)
		salt, _ := secretParams(s)
		kek, err := secretKEK(prf("B"), salt, "zed", b)
		if err != nil {
			t.Fatal(err)
		}
		if s.wrapped, err = wrapKey(kek, mk, slotAAD("zed", s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.PutVault(bg, "zed", r.encode(), rec.Version); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ id, secret []byte }{
		"B's secret under A's ID": {a, prf("B")},
		"A's secret under A's ID": {a, prf("A")},
	} {
		if _, err := v.UnlockWithSecret(bg, "zed", c.id, c.secret); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("%s: %v, want ErrUnlockFailed", name, err)
		}
	}
}
