package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

// secretAttempt is one secret unlock attempt as the Vault made it.
type secretAttempt struct {
	userID                       string
	id, secret                   string
	slotID                       [slotIDLen]byte
	keyVersion                   uint32
	paramsLen, wrappedLen, aadLn int
	ok                           bool
}

// secretCounter records every secret unlock attempt of a Vault (through
// its trySecret hook), the way kdfCounter records KDF runs.
type secretCounter struct {
	mu       sync.Mutex
	attempts []secretAttempt
}

func countSecret(v *Vault) *secretCounter {
	c := &secretCounter{}
	inner := v.trySecret
	v.trySecret = func(userID string, id, secret []byte, s *slot) ([]byte, error) {
		mk, err := inner(userID, id, secret, s)
		c.mu.Lock()
		c.attempts = append(c.attempts, secretAttempt{
			userID: userID, id: string(id), secret: string(secret), slotID: s.id, keyVersion: s.keyVersion,
			paramsLen: len(s.params), wrappedLen: len(s.wrapped), aadLn: len(slotAAD(userID, s)), ok: err == nil,
		})
		c.mu.Unlock()
		return mk, err
	}
	return c
}

func (c *secretCounter) take() []secretAttempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.attempts
	c.attempts = nil
	return a
}

// prf returns a 32-byte secret standing for a passkey's PRF output.
func prf(label string) []byte {
	b := make([]byte, 32)
	copy(b, "PRF output of "+label)
	return b
}

func secretSlotOf(t testing.TB, v *Vault, user string, id []byte) (SlotInfo, bool) {
	t.Helper()
	want, err := SecretSlotID(id)
	must.NoError(t, err)
	slots, err := v.Slots(bg, user)
	must.NoError(t, err)
	for _, s := range slots {
		if s.ID == want {
			return s, true
		}
	}
	return SlotInfo{}, false
}

// Round trip: a secret slot unlocks the vault to the same master key, is
// listed under SecretSlotID, and is replaced (not doubled) by a second
// AddSecretSlot of the same ID.
func TestSecretSlotRoundTrip(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "sam", "sam's passphrase")
	sealed, err := u.Seal([]byte("opened with a passkey"), []byte("notes/1"))
	must.NoError(t, err)
	credA := []byte("credential-A")
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A")))

	su, err := v.UnlockWithSecret(bg, "sam", credA, prf("A"))
	must.NoError(t, err)
	pt, err := su.Open(sealed, []byte("notes/1"))
	must.NoError(t, err)
	must.Equal(t, "opened with a passkey", string(pt))
	info, ok := secretSlotOf(t, v, "sam", credA)
	must.True(t, ok, "Slots lists the secret slot under SecretSlotID")
	must.Equal(t, SlotSecret, info.Kind)
	must.EqualValues(t, 1, info.KeyVersion)
	must.Equal(t, "", info.WrapperID)
	must.Equal(t, "secret", SlotSecret.String())

	// Replacing: the new secret works, the old one no longer does.
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A, re-registered")))
	_, err = v.UnlockWithSecret(bg, "sam", credA, prf("A"))
	must.ErrorIs(t, err, ErrUnlockFailed)
	_, err = v.UnlockWithSecret(bg, "sam", credA, prf("A, re-registered"))
	must.NoError(t, err)
	slots, err := v.Slots(bg, "sam")
	must.NoError(t, err)
	must.Len(t, slots, 2, "passphrase and one secret slot")

	// A longer secret and the longest ID work too.
	long := bytes.Repeat([]byte{0xa5}, MaxSecretIDLen)
	must.NoError(t, v.AddSecretSlot(bg, u, long, bytes.Repeat([]byte{7}, MaxSecretLen)))
	_, err = v.UnlockWithSecret(bg, "sam", long, bytes.Repeat([]byte{7}, MaxSecretLen))
	must.NoError(t, err)
}

// PKY-14: credential A's secret cannot open credential B's slot, a slot
// opens for no other user, and a wrong secret fails.
func TestSecretSlotBinding(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "tia", "tia's passphrase")
	credA, credB := []byte("credential-A"), []byte("credential-B")
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A")))
	must.NoError(t, v.AddSecretSlot(bg, u, credB, prf("B")))
	for name, c := range map[string]struct {
		user   string
		id     []byte
		secret []byte
	}{
		"A's secret, B's slot":   {"tia", credB, prf("A")},
		"B's secret, A's slot":   {"tia", credA, prf("B")},
		"wrong secret":           {"tia", credA, prf("C")},
		"unknown credential":     {"tia", []byte("credential-C"), prf("A")},
		"another user, no vault": {"uma", credA, prf("A")},
	} {
		_, err := v.UnlockWithSecret(bg, c.user, c.id, c.secret)
		must.ErrorIs(t, err, ErrUnlockFailed, name)
	}
	// Another user with a vault: A's slot is not theirs, and the record
	// copied under their name does not open either (the KEK and the AAD
	// bind the user).
	mustCreate(t, v, "uma", "uma's passphrase")
	_, err := v.UnlockWithSecret(bg, "uma", credA, prf("A"))
	must.ErrorIs(t, err, ErrUnlockFailed, "another user's vault")
	tia, _ := store.GetVault(bg, "tia")
	uma, _ := store.GetVault(bg, "uma")
	must.NoError(t, store.PutVault(bg, "uma", tia.Data, uma.Version))
	_, err = v.UnlockWithSecret(bg, "uma", credA, prf("A"))
	must.ErrorIs(t, err, ErrUnlockFailed, "tia's record under uma's name")
	// The right ones still work.
	for _, c := range []struct {
		id     []byte
		secret []byte
	}{{credA, prf("A")}, {credB, prf("B")}} {
		_, err := v.UnlockWithSecret(bg, "tia", c.id, c.secret)
		must.NoError(t, err)
	}
}

// Inputs out of bounds are ErrInvalidInput, before any work and without
// the secret in the error.
func TestSecretSlotInputBounds(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "val", "val's passphrase")
	c := countSecret(v)
	id := []byte("credential")
	for name, in := range map[string]struct{ id, secret []byte }{
		"secret of 31 bytes":   {id, prf("x")[:31]},
		"empty secret":         {id, nil},
		"secret over the max":  {id, make([]byte, MaxSecretLen+1)},
		"empty id":             {nil, prf("x")},
		"id of 1024 bytes":     {make([]byte, MaxSecretIDLen+1), prf("x")},
		"id and secret absent": {nil, nil},
	} {
		err := v.AddSecretSlot(bg, u, in.id, in.secret)
		must.ErrorIs(t, err, ErrInvalidInput, "AddSecretSlot: "+name)
		_, err = v.UnlockWithSecret(bg, "val", in.id, in.secret)
		must.ErrorIs(t, err, ErrInvalidInput, "UnlockWithSecret: "+name)
		must.NotErrorIs(t, err, ErrUnlockFailed, name)
		_, err = v.UnlockWithSecret(bg, "nobody", in.id, in.secret)
		must.ErrorIs(t, err, ErrInvalidInput, "UnlockWithSecret, no vault: "+name)
	}
	must.Len(t, c.take(), 0, "no attempt for refused inputs")
	_, err := SecretSlotID(nil)
	must.ErrorIs(t, err, ErrInvalidInput)
	_, err = SecretSlotID(make([]byte, MaxSecretIDLen+1))
	must.ErrorIs(t, err, ErrInvalidInput)
	slots, err := v.Slots(bg, "val")
	must.NoError(t, err)
	must.Len(t, slots, 1, "nothing was added")

	var nilVault *Vault
	must.ErrorIs(t, nilVault.AddSecretSlot(bg, u, id, prf("x")), ErrInvalidInput)
	_, err = nilVault.UnlockWithSecret(bg, "val", id, prf("x"))
	must.ErrorIs(t, err, ErrInvalidInput)
	must.ErrorIs(t, v.AddSecretSlot(bg, nil, id, prf("x")), ErrInvalidInput)
	_, err = v.UnlockWithSecret(bg, "", id, prf("x"))
	must.ErrorIs(t, err, ErrInvalidInput, "empty user ID")
	u.Lock()
	must.ErrorIs(t, v.AddSecretSlot(bg, u, id, prf("x")), ErrLocked)
}

// RemoveSlot with SecretSlotID removes the slot, and the next unlock
// fails at once; the passphrase and other slots are untouched.
func TestSecretSlotRemove(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "wes", "wes's passphrase")
	credA, credB := []byte("credential-A"), []byte("credential-B")
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A")))
	must.NoError(t, v.AddSecretSlot(bg, u, credB, prf("B")))
	_, err := v.UnlockWithSecret(bg, "wes", credA, prf("A"))
	must.NoError(t, err)
	idA, err := SecretSlotID(credA)
	must.NoError(t, err)
	must.NoError(t, v.RemoveSlot(bg, u, idA))
	_, err = v.UnlockWithSecret(bg, "wes", credA, prf("A"))
	must.ErrorIs(t, err, ErrUnlockFailed, "a removed slot fails at once")
	_, ok := secretSlotOf(t, v, "wes", credA)
	must.True(t, !ok, "the removed slot is not listed")
	_, err = v.UnlockWithSecret(bg, "wes", credB, prf("B"))
	must.NoError(t, err, "B's slot stays")
	_, err = v.Unlock(bg, "wes", []byte("wes's passphrase"))
	must.NoError(t, err, "the passphrase still unlocks")
	must.ErrorIs(t, v.RemoveSlot(bg, u, idA), ErrInvalidInput, "removing it twice")
}

// A secret slot survives ChangePassphrase and RegenerateRecoveryKeys; a
// RotateMasterKey drops it (its secret is not at hand), reports it
// removed, and the slot can be added again at the new key version.
func TestSecretSlotAcrossChanges(t *testing.T) {
	t.Parallel()
	n := &mockNotifier{}
	v, err := New(memstore.New(), Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	must.NoError(t, err)
	u := mustCreate(t, v, "xia", "first passphrase")
	sealed, err := u.Seal([]byte("before the rotation"), nil)
	must.NoError(t, err)
	credA := []byte("credential-A")
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A")))
	kms := newTestKMS("kms-1")
	must.NoError(t, v.AddWrapperSlot(bg, u, kms))

	must.NoError(t, v.ChangePassphrase(bg, "xia", []byte("first passphrase"), []byte("second passphrase")))
	_, err = v.UnlockWithSecret(bg, "xia", credA, prf("A"))
	must.NoError(t, err, "after ChangePassphrase")
	_, err = v.RegenerateRecoveryKeys(bg, u, 2)
	must.NoError(t, err)
	_, err = v.UnlockWithSecret(bg, "xia", credA, prf("A"))
	must.NoError(t, err, "after RegenerateRecoveryKeys")
	n.take()

	idA, _ := SecretSlotID(credA)
	ru, keys, err := v.RotateMasterKey(bg, "xia", []byte("second passphrase"), kms)
	must.NoError(t, err)
	must.Len(t, keys, 2)
	events := n.take()
	must.Len(t, events, 2, "MasterKeyRotated and one KeySlotRemoved")
	must.Equal(t, keyhold.MasterKeyRotated, events[0].Kind)
	must.Equal(t, keyhold.KeySlotRemoved, events[1].Kind)
	must.Equal(t, idA, events[1].Detail)
	_, err = v.UnlockWithSecret(bg, "xia", credA, prf("A"))
	must.ErrorIs(t, err, ErrUnlockFailed, "rotation drops the secret slot")
	_, ok := secretSlotOf(t, v, "xia", credA)
	must.True(t, !ok, "no secret slot listed after rotation")
	_, err = v.UnlockWithWrapper(bg, "xia", kms)
	must.NoError(t, err, "the wrapper slot was re-wrapped")

	// The old Unlocked value is at the old key version: refused.
	must.ErrorIs(t, v.AddSecretSlot(bg, u, credA, prf("A")), ErrConflict)
	must.NoError(t, v.AddSecretSlot(bg, ru, credA, prf("A")))
	su, err := v.UnlockWithSecret(bg, "xia", credA, prf("A"))
	must.NoError(t, err, "re-added after rotation")
	must.EqualValues(t, 2, su.KeyVersion())
	pt, err := su.Open(sealed, nil)
	must.NoError(t, err, "a record of the retired key version opens")
	must.Equal(t, "before the rotation", string(pt))
}

// Equal work: a wrong secret, an unknown ID, another user's slot, a user
// without a vault and a malformed record each cost exactly one secret
// attempt (one HKDF and one AES-GCM open) of the same shape, no KDF run,
// and answer alike.
func TestSecretSlotEqualWork(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams()})
	must.NoError(t, err)
	u := mustCreate(t, v, "has-vault", "the right passphrase")
	credA := []byte("credential-A")
	must.NoError(t, v.AddSecretSlot(bg, u, credA, prf("A")))
	o := mustCreate(t, v, "oth-vault", "another passphrase") // same length as has-vault
	must.NoError(t, v.AddSecretSlot(bg, o, []byte("credential-O"), prf("O")))
	must.NoError(t, store.PutVault(bg, "bad-vault", []byte("KHV\x01garbage"), 0))
	sc, kc := countSecret(v), countKDF(v)

	one := func(name, user string, id, secret []byte) (secretAttempt, error) {
		t.Helper()
		_, err := v.UnlockWithSecret(bg, user, id, secret)
		a := sc.take()
		must.Len(t, a, 1, "%s: secret attempts", name)
		must.Len(t, kc.take(), 0, "%s: no KDF run", name)
		must.Equal(t, string(secret), a[0].secret, name)
		must.Equal(t, string(id), a[0].id, name)
		must.Equal(t, user, a[0].userID, name)
		must.Equal(t, secretSlotID(id), a[0].slotID, name)
		must.True(t, !a[0].ok, "%s: the attempt fails", name)
		return a[0], err
	}
	wrong, err := one("wrong secret", "has-vault", credA, prf("guess"))
	must.ErrorIs(t, err, ErrUnlockFailed)
	must.NotErrorIs(t, err, ErrNoVault)
	must.Equal(t, 1+secretSaltLen, wrong.paramsLen)
	must.Equal(t, wrappedKeyLen, wrong.wrappedLen)
	wantText := err.Error()
	for name, c := range map[string]struct {
		user string
		id   []byte
	}{
		"unknown id":          {"has-vault", []byte("credential-Z")},
		"another user's slot": {"oth-vault", credA},
		"no vault":            {"non-vault", credA},
		"malformed record":    {"bad-vault", credA},
	} {
		a, err := one(name, c.user, c.id, prf("guess"))
		must.ErrorIs(t, err, ErrUnlockFailed, name)
		must.Equal(t, wantText, err.Error(), "%s: the text must not tell", name)
		must.Equal(t, wrong.paramsLen, a.paramsLen, name)
		must.Equal(t, wrong.wrappedLen, a.wrappedLen, name)
		must.Equal(t, wrong.aadLn, a.aadLn, "%s: the AAD's length (the slot ID is a hash, whatever the ID's length)", name)
		must.EqualValues(t, 1, a.keyVersion, name)
	}
	_, err = v.UnlockWithSecret(bg, "non-vault", credA, prf("guess"))
	must.ErrorIs(t, err, ErrNoVault, "an app that must tell can still ask")
	must.Len(t, sc.take(), 1)
	// The right secret: one attempt, which succeeds.
	_, err = v.UnlockWithSecret(bg, "has-vault", credA, prf("A"))
	must.NoError(t, err)
	a := sc.take()
	must.Len(t, a, 1)
	must.True(t, a[0].ok)
}

// The Notifier hears of an added secret slot (its slot ID, never the
// credential ID or the secret) and of its removal.
func TestSecretSlotNotifier(t *testing.T) {
	t.Parallel()
	n := &mockNotifier{}
	store := &failingPuts{Store: memstore.New()}
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	must.NoError(t, err)
	u := mustCreate(t, v, "yan", "yan's passphrase")
	cred := []byte("credential-A")
	id, _ := SecretSlotID(cred)
	must.NoError(t, v.AddSecretSlot(bg, u, cred, prf("A")))
	e := n.take()
	must.Len(t, e, 1)
	must.Equal(t, keyhold.KeySlotAdded, e[0].Kind)
	must.Equal(t, "yan", e[0].UserID)
	must.Equal(t, id, e[0].Detail)

	_, err = v.UnlockWithSecret(bg, "yan", cred, prf("A"))
	must.NoError(t, err)
	_, err = v.UnlockWithSecret(bg, "yan", cred, prf("B"))
	must.ErrorIs(t, err, ErrUnlockFailed)
	must.Len(t, n.take(), 0, "unlocks are not changes")

	store.fail.Store(true)
	must.ErrorIs(t, v.AddSecretSlot(bg, u, []byte("credential-B"), prf("B")), ErrConflict)
	must.ErrorIs(t, v.RemoveSlot(bg, u, id), ErrConflict)
	must.Len(t, n.take(), 0, "nothing stored, nothing notified")
	store.fail.Store(false)

	must.NoError(t, v.RemoveSlot(bg, u, id))
	e = n.take()
	must.Len(t, e, 1)
	must.Equal(t, keyhold.KeySlotRemoved, e[0].Kind)
	must.Equal(t, id, e[0].Detail)
}

// The secret never reaches an error's text under any fmt verb, an event,
// or the log (vault logs nothing; this checks the default loggers too).
// Not parallel: it captures the process's default loggers.
func TestSecretSlotSecretNeverShown(t *testing.T) {
	var logs bytes.Buffer
	oldLog, oldFlags := log.Writer(), log.Flags()
	oldSlog := slog.Default()
	log.SetOutput(&logs)
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		log.SetOutput(oldLog)
		log.SetFlags(oldFlags)
		slog.SetDefault(oldSlog)
	})

	n := &mockNotifier{}
	store := &failingPuts{Store: memstore.New()}
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.InteractiveParams(), Notifier: n})
	must.NoError(t, err)
	u := mustCreate(t, v, "zed", "zed's passphrase")
	secret := []byte("SECRET-PRF-OUTPUT-do-not-show-0123456789")
	cred := []byte("credential-A")

	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	collect(v.AddSecretSlot(bg, u, cred, secret))
	collect(v.AddSecretSlot(bg, u, cred, secret[:31]))
	collect(v.AddSecretSlot(bg, u, nil, secret))
	for _, user := range []string{"zed", "nobody", ""} {
		for _, s := range [][]byte{secret, append(bytes.Clone(secret), 'x'), secret[:31], make([]byte, MaxSecretLen+1)} {
			_, err := v.UnlockWithSecret(bg, user, cred, s)
			collect(err)
			_, err = v.UnlockWithSecret(bg, user, []byte("unknown"), s)
			collect(err)
		}
	}
	store.fail.Store(true)
	collect(v.AddSecretSlot(bg, u, cred, secret))
	store.fail.Store(false)
	u.Lock()
	collect(v.AddSecretSlot(bg, u, cred, secret))
	if len(errs) < 20 {
		t.Fatalf("only %d errors collected", len(errs))
	}

	forms := []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
		fmt.Sprint(secret), fmt.Sprintf("%q", secret)}
	var shown strings.Builder
	for _, err := range errs {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T"} {
			fmt.Fprintf(&shown, verb+"\n", err)
		}
	}
	for _, e := range n.take() {
		fmt.Fprintf(&shown, "%+v %#v\n", e, e)
	}
	shown.Write(logs.Bytes())
	for _, f := range forms {
		if strings.Contains(shown.String(), f) || strings.Contains(shown.String(), f[:16]) {
			t.Fatalf("the secret (as %q) is shown:\n%s", f, shown.String())
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("vault logged: %s", logs.Bytes())
	}
}

// FuzzSecretSlot: any ID and secret either are refused as ErrInvalidInput
// or round-trip; nothing panics, and a changed secret never unlocks.
func FuzzSecretSlot(f *testing.F) {
	f.Add([]byte("credential"), prf("A"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0}, make([]byte, 31))
	f.Add(make([]byte, MaxSecretIDLen), make([]byte, MaxSecretLen))
	f.Add(make([]byte, MaxSecretIDLen+1), make([]byte, MaxSecretLen+1))
	v, _ := newTestVault(f)
	u := mustCreate(f, v, "fuzz", "fuzz passphrase")
	f.Fuzz(func(t *testing.T, id, secret []byte) {
		sid, idErr := SecretSlotID(id)
		addErr := v.AddSecretSlot(bg, u, id, secret)
		valid := len(id) >= 1 && len(id) <= MaxSecretIDLen && len(secret) >= MinSecretLen && len(secret) <= MaxSecretLen
		if !valid {
			if !errors.Is(addErr, ErrInvalidInput) {
				t.Fatalf("AddSecretSlot of out-of-bounds input: %v", addErr)
			}
			if _, err := v.UnlockWithSecret(bg, "fuzz", id, secret); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("UnlockWithSecret of out-of-bounds input: %v", err)
			}
			return
		}
		if addErr != nil || idErr != nil || len(sid) != 2*slotIDLen {
			t.Fatalf("valid input: %v, %v, %q", addErr, idErr, sid)
		}
		if _, err := v.UnlockWithSecret(bg, "fuzz", id, secret); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		other := bytes.Clone(secret)
		other[len(other)-1] ^= 0x80
		if _, err := v.UnlockWithSecret(bg, "fuzz", id, other); !errors.Is(err, ErrUnlockFailed) {
			t.Fatalf("a changed secret: %v", err)
		}
		if err := v.RemoveSlot(bg, u, sid); err != nil {
			t.Fatalf("RemoveSlot: %v", err)
		}
	})
}
