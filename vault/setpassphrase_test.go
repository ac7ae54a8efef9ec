package vault

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

// passphraseSlots counts the user's passphrase slots.
func passphraseSlots(t *testing.T, v *Vault, user string) int {
	t.Helper()
	slots, err := v.Slots(bg, user)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range slots {
		if s.Kind == SlotPassphrase {
			n++
		}
	}
	return n
}

// A user who lost the passphrase opens the vault with a recovery key and
// sets a new passphrase: the old one no longer opens, the new one does
// (at the Vault's KDF parameters), the records sealed before still open,
// the other recovery key, the replacement and the secret slot all still
// open the vault, exactly one passphrase slot remains, and the notifier
// hears PassphraseChanged after RecoveryKeyUsed.
func TestSetPassphraseAfterRecoveryKey(t *testing.T) {
	t.Parallel()
	n := &mockNotifier{}
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, v, "ada", "ada's old passphrase")
	sealed, err := u.Seal([]byte("ada's note"), []byte("notes/1"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := v.RegenerateRecoveryKeys(bg, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AddSecretSlot(bg, u, []byte("ada's passkey"), prf("ada")); err != nil {
		t.Fatal(err)
	}
	u.Lock()
	n.take()

	r, replacement, err := v.UnlockWithRecoveryKey(bg, "ada", keys[0].Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetPassphrase(bg, r, []byte("ada's new passphrase")); err != nil {
		t.Fatalf("SetPassphrase: %v", err)
	}
	if _, err := v.Unlock(bg, "ada", []byte("ada's old passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("old passphrase after SetPassphrase: %v, want ErrUnlockFailed", err)
	}
	nu, err := v.Unlock(bg, "ada", []byte("ada's new passphrase"))
	if err != nil {
		t.Fatalf("new passphrase: %v", err)
	}
	if pt, err := nu.Open(sealed, []byte("notes/1")); err != nil || string(pt) != "ada's note" {
		t.Fatalf("a record sealed before: %q, %v", pt, err)
	}
	if got := passphraseSlots(t, v, "ada"); got != 1 {
		t.Fatalf("%d passphrase slots, want 1", got)
	}
	rec, err := v.store.GetVault(bg, "ada")
	if err != nil {
		t.Fatal(err)
	}
	dr, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range dr.slots {
		if s.kind != SlotPassphrase {
			continue
		}
		p, _, err := decodePassphraseParams(s.params)
		if err != nil || p != v.params {
			t.Fatalf("new slot's parameters %+v (%v), want the Vault's %+v", p, err, v.params)
		}
	}
	for name, key := range map[string]RecoveryKey{"the other recovery key": keys[1], "the replacement": replacement} {
		if _, _, err := v.UnlockWithRecoveryKey(bg, "ada", key.Reveal()); err != nil {
			t.Errorf("%s after SetPassphrase: %v", name, err)
		}
	}
	if _, err := v.UnlockWithSecret(bg, "ada", []byte("ada's passkey"), prf("ada")); err != nil {
		t.Errorf("secret slot after SetPassphrase: %v", err)
	}
	var kinds []keyhold.EventKind
	for _, e := range n.take() {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) < 2 || kinds[0] != keyhold.RecoveryKeyUsed || kinds[1] != keyhold.PassphraseChanged {
		t.Fatalf("events %v, want RecoveryKeyUsed then PassphraseChanged first", kinds)
	}
}

// A vault opened by a secret slot (a passkey's PRF output) gets a new
// passphrase the same way; a vault with no passphrase slot at all gets one.
func TestSetPassphraseAfterSecretAndWithoutSlot(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "bo", "bo's old passphrase")
	if err := v.AddSecretSlot(bg, u, []byte("bo's passkey"), prf("bo")); err != nil {
		t.Fatal(err)
	}
	s, err := v.UnlockWithSecret(bg, "bo", []byte("bo's passkey"), prf("bo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetPassphrase(bg, s, []byte("bo's new passphrase")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(bg, "bo", []byte("bo's new passphrase")); err != nil {
		t.Fatalf("new passphrase: %v", err)
	}
	// Take the passphrase slot out behind the vault's back.
	rec, err := store.GetVault(bg, "bo")
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	kept := r.slots[:0]
	for _, sl := range r.slots {
		if sl.kind != SlotPassphrase {
			kept = append(kept, sl)
		}
	}
	r.slots = kept
	if err := store.PutVault(bg, "bo", r.encode(), rec.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(bg, "bo", []byte("bo's new passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("no passphrase slot, yet: %v", err)
	}
	if err := v.SetPassphrase(bg, s, []byte("bo's third passphrase")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(bg, "bo", []byte("bo's third passphrase")); err != nil {
		t.Fatalf("the added passphrase slot: %v", err)
	}
	if got := passphraseSlots(t, v, "bo"); got != 1 {
		t.Fatalf("%d passphrase slots, want 1", got)
	}
}

// An Unlocked value whose key version a rotation retired cannot plant a
// passphrase slot: ErrConflict, nothing stored, the passphrase set by the
// rotation still the one that opens.
func TestSetPassphraseStaleUnlockedRefused(t *testing.T) {
	t.Parallel()
	n := &mockNotifier{}
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	stale := mustCreate(t, v, "cy", "cy's passphrase")
	if _, _, err := v.RotateMasterKey(bg, "cy", []byte("cy's passphrase")); err != nil {
		t.Fatal(err)
	}
	before, err := v.store.GetVault(bg, "cy")
	if err != nil {
		t.Fatal(err)
	}
	n.take()
	if err := v.SetPassphrase(bg, stale, []byte("planted passphrase")); !errors.Is(err, ErrConflict) {
		t.Fatalf("SetPassphrase with a retired Unlocked: %v, want ErrConflict", err)
	}
	after, err := v.store.GetVault(bg, "cy")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || !bytes.Equal(after.Data, before.Data) {
		t.Fatal("the refused call wrote the vault")
	}
	if _, err := v.Unlock(bg, "cy", []byte("planted passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("planted passphrase opens: %v", err)
	}
	if _, err := v.Unlock(bg, "cy", []byte("cy's passphrase")); err != nil {
		t.Fatalf("current passphrase: %v", err)
	}
	if e := n.take(); len(e) != 0 {
		t.Fatalf("events for a refused call: %v", e)
	}
}

// SetPassphrase racing another change of the same vault, both having read
// the same record before either writes (the store holds the reads):
// exactly one wins, the other is ErrConflict, and the passphrase that
// opens is the winner's.
func TestSetPassphraseRacesOtherChanges(t *testing.T) {
	t.Parallel()
	const pass = "dee's passphrase"
	rivals := map[string]struct {
		run func(v *Vault, u *Unlocked) error
		// opens is the passphrase that opens if the rival wins.
		opens string
	}{
		"SetPassphrase": {func(v *Vault, u *Unlocked) error {
			return v.SetPassphrase(bg, u, []byte("rival's passphrase"))
		}, "rival's passphrase"},
		"ChangePassphrase": {func(v *Vault, _ *Unlocked) error {
			return v.ChangePassphrase(bg, "dee", []byte(pass), []byte("rival's passphrase"))
		}, "rival's passphrase"},
		"RegenerateRecoveryKeys": {func(v *Vault, u *Unlocked) error {
			_, err := v.RegenerateRecoveryKeys(bg, u, 2)
			return err
		}, pass},
		"RotateMasterKey": {func(v *Vault, _ *Unlocked) error {
			_, _, err := v.RotateMasterKey(bg, "dee", []byte(pass))
			return err
		}, pass},
	}
	for name, rival := range rivals {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newPausingStore()
			v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
			if err != nil {
				t.Fatal(err)
			}
			u := mustCreate(t, v, "dee", pass)
			store.arm(2)
			var wg sync.WaitGroup
			var setErr, rivalErr error
			wg.Go(func() { setErr = v.SetPassphrase(bg, u, []byte("set passphrase")) })
			wg.Go(func() { rivalErr = rival.run(v, u) })
			wg.Wait()
			if (setErr == nil) == (rivalErr == nil) {
				t.Fatalf("SetPassphrase: %v; %s: %v; want exactly one to succeed", setErr, name, rivalErr)
			}
			lost, opens, closed := rivalErr, "set passphrase", rival.opens
			if setErr != nil {
				lost, opens, closed = setErr, rival.opens, "set passphrase"
			}
			if !errors.Is(lost, ErrConflict) {
				t.Fatalf("the loser's error: %v, want ErrConflict", lost)
			}
			if _, err := v.Unlock(bg, "dee", []byte(opens)); err != nil {
				t.Fatalf("the winner's passphrase %q: %v", opens, err)
			}
			if _, err := v.Unlock(bg, "dee", []byte(closed)); !errors.Is(err, ErrUnlockFailed) {
				t.Fatalf("the loser's passphrase %q: %v, want ErrUnlockFailed", closed, err)
			}
			if got := passphraseSlots(t, v, "dee"); got != 1 {
				t.Fatalf("%d passphrase slots, want 1", got)
			}
		})
	}
}

// Bad arguments are typed errors, never a panic, and write nothing: a nil
// or locked Unlocked, an empty passphrase, one too long for the Hasher,
// one not UTF-8.
func TestSetPassphraseRefusals(t *testing.T) {
	t.Parallel()
	n := &mockNotifier{}
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, v, "eve", "eve's passphrase")
	locked := mustCreate(t, v, "fay", "fay's passphrase")
	locked.Lock()
	before, err := v.store.GetVault(bg, "eve")
	if err != nil {
		t.Fatal(err)
	}
	var nilVault *Vault
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"nil Vault", nilVault.SetPassphrase(bg, u, []byte("new passphrase")), ErrInvalidInput},
		{"nil Unlocked", v.SetPassphrase(bg, nil, []byte("new passphrase")), ErrInvalidInput},
		{"locked Unlocked", v.SetPassphrase(bg, locked, []byte("new passphrase")), ErrLocked},
		{"empty", v.SetPassphrase(bg, u, nil), ErrInvalidInput},
		{"empty, not nil", v.SetPassphrase(bg, u, []byte{}), ErrInvalidInput},
		{"too long", v.SetPassphrase(bg, u, []byte(strings.Repeat("a", kdf.DefaultMaxPasswordBytes+1))), kdf.ErrTooLong},
		{"not UTF-8", v.SetPassphrase(bg, u, []byte("bad \xff passphrase")), kdf.ErrInvalidUTF8},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	after, err := v.store.GetVault(bg, "eve")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || !bytes.Equal(after.Data, before.Data) {
		t.Fatal("a refused call wrote the vault")
	}
	if _, err := v.Unlock(bg, "eve", []byte("eve's passphrase")); err != nil {
		t.Fatalf("passphrase after the refusals: %v", err)
	}
	if _, err := v.Unlock(bg, "fay", []byte("new passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("a locked Unlocked set a passphrase: %v", err)
	}
	if e := n.take(); len(e) != 0 {
		t.Fatalf("events for refused calls: %v", e)
	}
}
