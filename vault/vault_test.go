package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/internal/recoverycode"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

var bg = context.Background()

// testHasher is shared by the tests: one Gate, so parallel tests queue
// rather than all allocating at once.
var testHasher = func() *kdf.Hasher {
	g, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 2, MaxWaiting: 1000})
	if err != nil {
		panic(err)
	}
	h, err := kdf.New(kdf.Config{Gate: g})
	if err != nil {
		panic(err)
	}
	return h
}()

// newTestVault returns a Vault over a fresh memstore with the interactive
// Argon2id preset, so tests stay fast.
func newTestVault(t testing.TB) (*Vault, *memstore.Store) {
	t.Helper()
	store := memstore.New()
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	return v, store
}

func mustCreate(t testing.TB, v *Vault, user, pass string) *Unlocked {
	t.Helper()
	u, err := v.Create(bg, user, []byte(pass))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return u
}

func TestCreateUnlockSealOpen(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's long passphrase")
	sealed, err := u.Seal([]byte("secret note"), []byte("notes/1/body"))
	if err != nil {
		t.Fatal(err)
	}
	u2, err := v.Unlock(bg, "alice", []byte("alice's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := u2.Open(sealed, []byte("notes/1/body"))
	if err != nil || string(pt) != "secret note" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := v.Create(bg, "alice", []byte("another passphrase")); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := v.Unlock(bg, "bob", []byte("x")); !errors.Is(err, ErrNoVault) {
		t.Fatalf("Unlock of a missing vault: %v", err)
	}
}

// VLT-01: random 256-bit master keys, independent of the passphrase.
func TestMasterKeysIndependent(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	a := mustCreate(t, v, "a", "the same passphrase")
	b := mustCreate(t, v, "b", "the same passphrase")
	if len(a.mk) != 32 || len(b.mk) != 32 {
		t.Fatalf("key lengths %d, %d", len(a.mk), len(b.mk))
	}
	if bytes.Equal(a.mk, b.mk) {
		t.Fatal("two users with one passphrase share a master key")
	}
}

// VLT-02: the KEK is domain-separated from the login verifier: a login
// hash made with the slot's own salt and parameters does not unwrap it.
func TestKEKIsNotTheVerifier(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	mustCreate(t, v, "u", "one passphrase for both")
	rec, _ := store.GetVault(bg, "u")
	r, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	s := &r.slots[0]
	p, salt, _ := decodePassphraseParams(s.params)
	// The raw Argon2id output a login hash would store for this salt.
	verifier, err := rawArgon2id([]byte("one passphrase for both"), salt, p)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := testHasher.DeriveKey(bg, []byte("one passphrase for both"), salt, p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(verifier, kek) {
		t.Fatal("the KEK equals the login verifier")
	}
	if _, err := unwrapKey(verifier, s.wrapped, slotAAD("u", s)); !errors.Is(err, ErrUnlockFailed) {
		t.Fatal("the login verifier unwrapped the master key")
	}
	if _, err := unwrapKey(kek, s.wrapped, slotAAD("u", s)); err != nil {
		t.Fatalf("the KEK did not unwrap: %v", err)
	}
}

// VLT-07: a passphrase change re-wraps the same master key; the old
// passphrase stops working; data still opens.
func TestChangePassphrase(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "carol", "first passphrase here")
	sealed, _ := u.Seal([]byte("data"), []byte("ctx"))
	if err := v.ChangePassphrase(bg, "carol", []byte("wrong passphrase"), []byte("x y z w v")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("change with a wrong passphrase: %v", err)
	}
	if err := v.ChangePassphrase(bg, "carol", []byte("first passphrase here"), []byte("second passphrase here")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(bg, "carol", []byte("first passphrase here")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("old passphrase after change: %v", err)
	}
	u2, err := v.Unlock(bg, "carol", []byte("second passphrase here"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := u2.Open(sealed, []byte("ctx")); err != nil || string(pt) != "data" {
		t.Fatalf("data after change: %q, %v", pt, err)
	}
}

// Concurrent changes to one vault: exactly one wins, the others get
// ErrConflict and store nothing.
func TestConcurrentChangesConflict(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	mustCreate(t, v, "dave", "original passphrase")
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = v.ChangePassphrase(bg, "dave", []byte("original passphrase"), fmt.Appendf(nil, "new passphrase %d", i))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("changes %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrConflict):
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no change won")
	}
	if _, err := v.Unlock(bg, "dave", fmt.Appendf(nil, "new passphrase %d", winner)); err != nil {
		t.Fatalf("the winner's passphrase: %v", err)
	}
}

// VLT-10, VLT-11: recovery keys carry at least 128 bits, are normalised on
// input, unlock once, and are replaced on use.
func TestRecoveryKeys(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "erin", "erin's passphrase")
	sealed, _ := u.Seal([]byte("kept"), nil)
	keys, err := v.RegenerateRecoveryKeys(bg, u, 3)
	if err != nil {
		t.Fatal(err)
	}
	if bits := recoverycode.Chars * 5; bits < 128 || len(recoverycode.Alphabet()) != 32 {
		t.Fatalf("recovery keys carry %d bits", bits)
	}
	code := keys[1].Reveal()
	if len(strings.ReplaceAll(code, "-", "")) != recoverycode.Chars || strings.Count(code, "-") != 7 {
		t.Fatalf("recovery key %q is not 8 groups of 4", code)
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	u2, replacement, err := v.UnlockWithRecoveryKey(bg, "erin", typed)
	if err != nil {
		t.Fatalf("unlock with a normalised recovery key: %v", err)
	}
	if pt, err := u2.Open(sealed, nil); err != nil || string(pt) != "kept" {
		t.Fatalf("data after recovery: %v", err)
	}
	if replacement.Reveal() == "" || replacement.Reveal() == code {
		t.Fatal("no fresh replacement key")
	}
	if _, _, err := v.UnlockWithRecoveryKey(bg, "erin", code); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("second use of a recovery key: %v", err)
	}
	rec, _ := store.GetVault(bg, "erin")
	r, _ := decodeRecord(rec.Data)
	recovery := 0
	for _, s := range r.slots {
		if s.kind == SlotRecovery {
			recovery++
		}
	}
	if recovery != 3 {
		t.Fatalf("%d recovery slots after one use, want 3", recovery)
	}
	if _, _, err := v.UnlockWithRecoveryKey(bg, "erin", replacement.Reveal()); err != nil {
		t.Fatalf("replacement key: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("U", 32), code + "0", strings.Repeat("0", 1000)} {
		if _, _, err := v.UnlockWithRecoveryKey(bg, "erin", bad); !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("malformed key %q: %v", bad, err)
		}
	}
	if fmt.Sprint(keys[0]) != "[redacted]" || fmt.Sprintf("%#v", keys[0]) != "[redacted]" {
		t.Fatal("a recovery key prints")
	}
}

// VLT-14: the unlocked key never prints or marshals, and Lock zeroes it.
func TestUnlockedHygiene(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "frank", "frank's passphrase")
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s %x %q", u, u, u, u, u, u)} {
		if strings.Contains(s, "frank") || strings.Contains(s, fmt.Sprintf("%x", u.mk)) {
			t.Fatalf("formatting shows secrets: %s", s)
		}
	}
	if _, err := u.MarshalJSON(); err == nil {
		t.Fatal("MarshalJSON succeeded")
	}
	backing := u.mk
	u.Lock()
	if !bytes.Equal(backing, make([]byte, 32)) {
		t.Fatal("Lock left key bytes in memory")
	}
	if _, err := u.Seal([]byte("x"), nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("Seal after Lock: %v", err)
	}
	if _, err := u.Open(make([]byte, 64), nil); !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrLocked) {
		t.Fatalf("Open after Lock: %v", err)
	}
	u.Lock()
}

// VLT-05: ciphertexts cannot be swapped between users, records or fields.
func TestRecordSwaps(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	a := mustCreate(t, v, "userA", "passphrase of A")
	b := mustCreate(t, v, "userB", "passphrase of B")
	rec1, _ := a.Seal([]byte("one"), []byte("notes/1/body"))
	rec2, _ := a.Seal([]byte("two"), []byte("notes/2/body"))
	for name, try := range map[string]func() error{
		"A's record as B":        func() error { _, err := b.Open(rec1, []byte("notes/1/body")); return err },
		"record 1 as record 2":   func() error { _, err := a.Open(rec1, []byte("notes/2/body")); return err },
		"record 2 as record 1":   func() error { _, err := a.Open(rec2, []byte("notes/1/body")); return err },
		"other field":            func() error { _, err := a.Open(rec1, []byte("notes/1/title")); return err },
		"empty context":          func() error { _, err := a.Open(rec1, nil); return err },
		"truncated":              func() error { _, err := a.Open(rec1[:len(rec1)-1], []byte("notes/1/body")); return err },
		"too short for a header": func() error { _, err := a.Open(rec1[:5], []byte("notes/1/body")); return err },
	} {
		if err := try(); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
}

// VLT-03: flipping any bit of a sealed record makes Open fail with the one
// error.
func TestRecordEveryBitFlip(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "gina", "gina's passphrase")
	sealed, _ := u.Seal([]byte("a short plaintext"), []byte("ctx"))
	for i := range len(sealed) * 8 {
		c := bytes.Clone(sealed)
		c[i/8] ^= 1 << (i % 8)
		if _, err := u.Open(c, []byte("ctx")); err != ErrDecrypt {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
}

// VLT-03, VLT-04: flipping any bit of a stored vault record (and so of
// any slot: its kind, id, key version, KDF parameters, salt, nonce,
// ciphertext or tag) stops it from unlocking. The original KEK is used for
// every candidate: a changed salt or parameter changes the associated data,
// so even the right KEK must fail, and any other KEK fails a fortiori.
func TestVaultRecordEveryBitFlip(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	mustCreate(t, v, "hank", "hank's passphrase")
	rec, _ := store.GetVault(bg, "hank")
	orig, _ := decodeRecord(rec.Data)
	p, salt, _ := decodePassphraseParams(orig.slots[0].params)
	kek, err := testHasher.DeriveKey(bg, []byte("hank's passphrase"), salt, p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(rec.Data) * 8 {
		c := bytes.Clone(rec.Data)
		c[i/8] ^= 1 << (i % 8)
		r, err := decodeRecord(c)
		if err != nil {
			if !errors.Is(err, ErrUnlockFailed) {
				t.Fatalf("bit %d: decode error %v does not match ErrUnlockFailed", i, err)
			}
			continue
		}
		for j := range r.slots {
			s := &r.slots[j]
			if s.kind != SlotPassphrase || s.keyVersion != r.keyVersion {
				continue
			}
			if _, err := unwrapKey(kek, s.wrapped, slotAAD("hank", s)); !errors.Is(err, ErrUnlockFailed) {
				t.Fatalf("bit %d flipped and the slot still unwraps", i)
			}
		}
	}
}

// VLT-04: a slot copied from one user's vault into another's does not
// unlock it.
func TestSlotSwapBetweenUsers(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	mustCreate(t, v, "ivan", "shared passphrase text")
	mustCreate(t, v, "judy", "shared passphrase text")
	ivan, _ := store.GetVault(bg, "ivan")
	judy, _ := store.GetVault(bg, "judy")
	if err := store.PutVault(bg, "judy", ivan.Data, judy.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(bg, "judy", []byte("shared passphrase text")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("ivan's record under judy: %v", err)
	}
}

// VLT-15: every unlock failure is the same error with the same message.
func TestUnlockFailuresLookAlike(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	mustCreate(t, v, "kim", "kim's passphrase")
	rec, _ := store.GetVault(bg, "kim")
	var msgs []string
	check := func(name string, err error) {
		if !errors.Is(err, ErrUnlockFailed) {
			t.Errorf("%s: %v", name, err)
			return
		}
		msgs = append(msgs, err.Error())
	}
	_, err := v.Unlock(bg, "kim", []byte("wrong"))
	check("wrong passphrase", err)
	_, _, err = v.UnlockWithRecoveryKey(bg, "kim", strings.Repeat("A", 32))
	check("wrong recovery key", err)
	tampered := bytes.Clone(rec.Data)
	tampered[len(tampered)-1] ^= 1
	store.PutVault(bg, "kim", tampered, rec.Version)
	_, err = v.Unlock(bg, "kim", []byte("kim's passphrase"))
	check("tampered tag", err)
	store.PutVault(bg, "kim", rec.Data[:10], rec.Version+1)
	_, err = v.Unlock(bg, "kim", []byte("kim's passphrase"))
	if !errors.Is(err, ErrUnlockFailed) {
		t.Errorf("truncated record: %v", err)
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("messages differ: %q vs %q", m, msgs[0])
		}
	}
}

// VLT-09, VLT-17: a reset makes a new key version; old records no longer
// open, and an old record put back through the store API unlocks nothing
// newer.
func TestResetDestroyingData(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "leo", "leo's old passphrase")
	old, _ := u.Seal([]byte("old data"), nil)
	oldRec, _ := store.GetVault(bg, "leo")
	fresh, err := v.ResetDestroyingData(bg, "leo", []byte("leo's new passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.KeyVersion() != u.KeyVersion()+1 {
		t.Fatalf("key version %d after reset of %d", fresh.KeyVersion(), u.KeyVersion())
	}
	if _, err := fresh.Open(old, nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old record after reset: %v", err)
	}
	if _, err := v.Unlock(bg, "leo", []byte("leo's old passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("old passphrase after reset: %v", err)
	}
	// Writing the old record back with a stale expected version is refused.
	if err := store.PutVault(bg, "leo", oldRec.Data, oldRec.Version); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale write: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := New(memstore.New(), Config{KDF: kdf.Params{Algorithm: kdf.Argon2id, Time: 1, MemoryKiB: 1024, Threads: 1, SaltLen: 16}}); !errors.Is(err, kdf.ErrWeakParams) {
		t.Fatalf("weak KDF: %v", err)
	}
	v, _ := newTestVault(t)
	if _, err := v.Create(bg, "", []byte("x")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("empty user: %v", err)
	}
	if _, err := v.Create(bg, strings.Repeat("u", 256), []byte("x")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("long user: %v", err)
	}
}

// memstoreWith returns a store holding data as userID's vault record.
func memstoreWith(t testing.TB, userID string, data []byte) *memstore.Store {
	t.Helper()
	s := memstore.New()
	if err := s.PutVault(bg, userID, data, 0); err != nil {
		t.Fatal(err)
	}
	return s
}
