package vault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// mockNotifier records every event it is given.
type mockNotifier struct {
	mu     sync.Mutex
	events []keyhold.Event
	panics bool
}

func (n *mockNotifier) Notify(ctx context.Context, e keyhold.Event) {
	n.mu.Lock()
	n.events = append(n.events, e)
	n.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		panic("Notify's context has no deadline")
	}
	if n.panics {
		panic(errors.New("the notifier's mail server is down"))
	}
}

// take returns the events since the last call.
func (n *mockNotifier) take() []keyhold.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.events
	n.events = nil
	return e
}

// failingPuts makes PutVault fail while fail is set.
type failingPuts struct {
	*memstore.Store
	fail atomic.Bool
}

func (s *failingPuts) PutVault(ctx context.Context, userID string, data []byte, expect uint64) error {
	if s.fail.Load() {
		return storage.ErrConflict
	}
	return s.Store.PutVault(ctx, userID, data, expect)
}

// TestNotifierX06 is X-06 for vault: a mock Notifier receives each event
// exactly once per change (passphrase change, recovery-key use and
// regeneration, master-key rotation, key slot added and removed, reset of
// an existing vault), with the user's ID and no secret; a change that is
// not stored, and a failed unlock, send nothing; a panicking Notifier
// does not fail the change.
func TestNotifierX06(t *testing.T) {
	t.Parallel()
	store := &failingPuts{Store: memstore.New()}
	n := &mockNotifier{}
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	const user = "nora"
	var secrets []string
	expect := func(step string, kind keyhold.EventKind, detail string) {
		t.Helper()
		got := n.take()
		if len(got) != 1 || got[0].Kind != kind || got[0].UserID != user || got[0].Detail != detail || got[0].Time.IsZero() {
			t.Fatalf("%s: events %+v, want exactly one %s for %s (detail %q)", step, got, kind, user, detail)
		}
		for _, s := range secrets {
			if strings.Contains(got[0].Detail, s) || strings.Contains(string(got[0].Kind), s) {
				t.Fatalf("%s: the event carries a secret", step)
			}
		}
	}
	expectNone := func(step string) {
		t.Helper()
		if got := n.take(); len(got) != 0 {
			t.Fatalf("%s: events %+v, want none", step, got)
		}
	}

	u := mustCreate(t, v, user, "first passphrase")
	defer u.Lock()
	expectNone("Create")
	secrets = append(secrets, "first passphrase", "second passphrase")

	if _, err := v.Unlock(bg, user, []byte("wrong")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal(err)
	}
	if err := v.ChangePassphrase(bg, user, []byte("wrong"), []byte("second passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal(err)
	}
	expectNone("failed unlock and change")

	store.fail.Store(true)
	if err := v.ChangePassphrase(bg, user, []byte("first passphrase"), []byte("second passphrase")); err == nil {
		t.Fatal("ChangePassphrase succeeded over a failing store")
	}
	store.fail.Store(false)
	expectNone("change not stored")
	if err := v.ChangePassphrase(bg, user, []byte("first passphrase"), []byte("second passphrase")); err != nil {
		t.Fatal(err)
	}
	expect("ChangePassphrase", keyhold.PassphraseChanged, "")

	keys, err := v.RegenerateRecoveryKeys(bg, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		secrets = append(secrets, k.Reveal())
	}
	expect("RegenerateRecoveryKeys", keyhold.RecoveryKeysRegenerated, "")

	if _, _, err := v.UnlockWithRecoveryKey(bg, user, "not a recovery key"); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal(err)
	}
	expectNone("wrong recovery key")
	ru, next, err := v.UnlockWithRecoveryKey(bg, user, keys[0].Reveal())
	if err != nil {
		t.Fatal(err)
	}
	ru.Lock()
	secrets = append(secrets, next.Reveal())
	expect("UnlockWithRecoveryKey", keyhold.RecoveryKeyUsed, "")
	if _, _, err := v.UnlockWithRecoveryKey(bg, user, keys[0].Reveal()); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal("a used recovery key unlocked again")
	}
	expectNone("used recovery key again")

	kms := newTestKMS("kms-1")
	if err := v.AddWrapperSlot(bg, u, kms); err != nil {
		t.Fatal(err)
	}
	expect("AddWrapperSlot", keyhold.KeySlotAdded, "kms-1")
	slots, err := v.Slots(bg, user)
	if err != nil {
		t.Fatal(err)
	}
	var wrapperSlot string
	for _, s := range slots {
		if s.Kind == SlotWrapper {
			wrapperSlot = s.ID
		}
	}
	if err := v.RemoveSlot(bg, u, wrapperSlot); err != nil {
		t.Fatal(err)
	}
	expect("RemoveSlot", keyhold.KeySlotRemoved, wrapperSlot)

	ru, rotated, err := v.RotateMasterKey(bg, user, []byte("second passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	ru.Lock()
	if len(rotated) == 0 {
		t.Fatal("rotation made no recovery keys")
	}
	expect("RotateMasterKey", keyhold.MasterKeyRotated, "")

	n.panics = true
	ru, err = v.ResetDestroyingData(bg, user, []byte("third passphrase"))
	if err != nil {
		t.Fatalf("ResetDestroyingData with a panicking Notifier: %v", err)
	}
	ru.Lock()
	n.panics = false
	expect("ResetDestroyingData", keyhold.VaultReset, "")
	if ru, err = v.Unlock(bg, user, []byte("third passphrase")); err != nil {
		t.Fatalf("the reset with a panicking Notifier was not stored: %v", err)
	}
	ru.Lock()
}
