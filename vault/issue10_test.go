package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

// kdfRun is one KDF run as the Vault asked for it.
type kdfRun struct {
	params  kdf.Params
	saltLen int
	pass    string
	err     error
}

func (r kdfRun) String() string {
	return fmt.Sprintf("%s t=%d m=%d p=%d i=%d key=%d salt=%d ok=%v", r.params.Algorithm, r.params.Time,
		r.params.MemoryKiB, r.params.Threads, r.params.Iterations, r.params.KeyLen, r.saltLen, r.err == nil)
}

// kdfCounter records every KDF run of a Vault (through its derive hook)
// and, when before is set, calls it first.
type kdfCounter struct {
	mu     sync.Mutex
	runs   []kdfRun
	before func(ctx context.Context)
}

// count installs c as v's KDF and returns it.
func countKDF(v *Vault) *kdfCounter {
	c := &kdfCounter{}
	inner := v.derive
	v.derive = func(ctx context.Context, pass, salt []byte, p kdf.Params) ([]byte, error) {
		if c.before != nil {
			c.before(ctx)
		}
		key, err := inner(ctx, pass, salt, p)
		c.mu.Lock()
		c.runs = append(c.runs, kdfRun{params: p, saltLen: len(salt), pass: string(pass), err: err})
		c.mu.Unlock()
		return key, err
	}
	return c
}

// take returns the runs since the last take.
func (c *kdfCounter) take() []kdfRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.runs
	c.runs = nil
	return r
}

// Issue 10 item 5: a user without a vault, a wrong passphrase, a malformed
// record and UnlockDummy (a locked account) all cost exactly one KDF run
// with the same parameters, which completed; the answers read alike.
func TestUnlockEqualWork(t *testing.T) {
	t.Parallel()
	for _, params := range []kdf.Params{kdf.InteractiveParams(), kdf.PBKDF2SHA256Params()} {
		t.Run(string(params.Algorithm), func(t *testing.T) {
			t.Parallel()
			store := memstore.New()
			v, err := New(store, Config{Hasher: testHasher, KDF: params})
			must.NoError(t, err)
			mustCreate(t, v, "has-vault", "the right passphrase")
			must.NoError(t, store.PutVault(bg, "broken", []byte("KHV\x01garbage"), 0))
			c := countKDF(v)
			const guess = "a wrong passphrase"

			one := func(name string, call func() error) (kdfRun, error) {
				t.Helper()
				err := call()
				runs := c.take()
				must.Len(t, runs, 1, "%s: KDF runs", name)
				must.NoError(t, runs[0].err, "%s: the KDF run must complete", name)
				must.Equal(t, guess, runs[0].pass, name)
				return runs[0], err
			}
			wrong, err := one("wrong passphrase", func() error { _, err := v.Unlock(bg, "has-vault", []byte(guess)); return err })
			must.ErrorIs(t, err, ErrUnlockFailed)
			must.NotErrorIs(t, err, ErrNoVault)
			wantText := err.Error()

			for name, call := range map[string]func() error{
				"unknown user":    func() error { _, err := v.Unlock(bg, "no-vault", []byte(guess)); return err },
				"malformed":       func() error { _, err := v.Unlock(bg, "broken", []byte(guess)); return err },
				"UnlockDummy":     func() error { return v.UnlockDummy(bg, []byte(guess)) },
				"change, unknown": func() error { return v.ChangePassphrase(bg, "no-vault", []byte(guess), []byte("new one here")) },
				"rotate, unknown": func() error { _, _, err := v.RotateMasterKey(bg, "no-vault", []byte(guess)); return err },
				"change, wrong":   func() error { return v.ChangePassphrase(bg, "has-vault", []byte(guess), []byte("new one here")) },
				"rotate, wrong":   func() error { _, _, err := v.RotateMasterKey(bg, "has-vault", []byte(guess)); return err },
			} {
				run, err := one(name, call)
				must.Equal(t, wrong.String(), run.String(), "%s: KDF parameters", name)
				must.ErrorIs(t, err, ErrUnlockFailed, name)
				if name != "malformed" { // tampering, not existence: its text may say so
					must.Equal(t, wantText, err.Error(), "%s: the text must not tell", name)
				}
			}
			_, err = v.Unlock(bg, "no-vault", []byte(guess))
			must.ErrorIs(t, err, ErrNoVault, "an app that must tell can still ask")
			c.take()
		})
	}
}

// Issue 10 item 11: a slot whose stored KDF parameters are out of bounds
// is a parameter refusal, never ErrUnlockFailed, on every passphrase path.
func TestUnlockParamRefusalIsTyped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(p *kdf.Params, salt []byte) []byte
		asType bool
	}{
		{"argon2 t", func(p *kdf.Params, salt []byte) []byte { p.Time = 1000; return salt }, true},
		{"argon2 m", func(p *kdf.Params, salt []byte) []byte { p.MemoryKiB = 1 << 30; return salt }, true},
		{"short salt", func(p *kdf.Params, salt []byte) []byte { return salt[:8] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, store := newTestVault(t)
			mustCreate(t, v, "u", "the right passphrase")
			rec, err := store.GetVault(bg, "u")
			must.NoError(t, err)
			r, err := decodeRecord(rec.Data)
			must.NoError(t, err)
			p, salt, err := decodePassphraseParams(r.slots[0].params)
			must.NoError(t, err)
			salt = tc.edit(&p, salt)
			r.slots[0].params = encodePassphraseParams(p, salt)
			must.NoError(t, store.PutVault(bg, "u", r.encode(), rec.Version))

			for name, err := range map[string]error{
				"Unlock":           func() error { _, err := v.Unlock(bg, "u", []byte("the right passphrase")); return err }(),
				"ChangePassphrase": v.ChangePassphrase(bg, "u", []byte("the right passphrase"), []byte("another passphrase")),
				"RotateMasterKey":  func() error { _, _, err := v.RotateMasterKey(bg, "u", []byte("the right passphrase")); return err }(),
			} {
				must.ErrorIs(t, err, kdf.ErrParamsOutOfBounds, name)
				must.NotErrorIs(t, err, ErrUnlockFailed, name)
				if tc.asType {
					var pe *kdf.ParamsError
					must.ErrorAs(t, err, &pe, name)
				}
			}
		})
	}
}

// Issue 10 item 11: a full FailFast gate is kdf.ErrBusy and a context that
// ends inside the KDF is ctx's error, never ErrUnlockFailed, on every path
// that runs the KDF (real or dummy).
func TestUnlockBusyAndContextAreTyped(t *testing.T) {
	t.Parallel()
	gate, err := kdf.NewGate(kdf.GateConfig{MaxConcurrent: 1, FailFast: true})
	must.NoError(t, err)
	h, err := kdf.New(kdf.Config{Gate: gate})
	must.NoError(t, err)
	store := memstore.New()
	v, err := New(store, Config{Hasher: h, KDF: kdf.InteractiveParams()})
	must.NoError(t, err)
	mustCreate(t, v, "u", "the right passphrase")

	paths := func(ctx context.Context) map[string]error {
		return map[string]error{
			"Unlock":              func() error { _, err := v.Unlock(ctx, "u", []byte("the right passphrase")); return err }(),
			"Unlock, unknown":     func() error { _, err := v.Unlock(ctx, "nobody", []byte("the right passphrase")); return err }(),
			"UnlockDummy":         v.UnlockDummy(ctx, []byte("the right passphrase")),
			"ChangePassphrase":    v.ChangePassphrase(ctx, "u", []byte("the right passphrase"), []byte("another passphrase")),
			"RotateMasterKey":     func() error { _, _, err := v.RotateMasterKey(ctx, "u", []byte("the right passphrase")); return err }(),
			"ResetDestroyingData": func() error { _, err := v.ResetDestroyingData(ctx, "u", []byte("another passphrase")); return err }(),
		}
	}

	// Hold the gate's only place until every path has been refused.
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() { done <- gate.Run(bg, 1, func() { close(started); <-release }) }()
	<-started
	busy := paths(bg)
	close(release)
	must.NoError(t, <-done)
	for name, err := range busy {
		must.ErrorIs(t, err, kdf.ErrBusy, name)
		must.NotErrorIs(t, err, ErrUnlockFailed, name)
	}

	// The context ends after the record was read, just before the KDF.
	c := countKDF(v)
	for name := range paths(bg) {
		ctx, cancel := context.WithCancel(bg)
		c.before = func(context.Context) { cancel() }
		err := paths(ctx)[name]
		cancel()
		must.ErrorIs(t, err, context.Canceled, name)
		must.NotErrorIs(t, err, ErrUnlockFailed, name)
	}
}

// ctxKMS is a KeyWrapper whose Unwrap ends the caller's context and fails,
// as a KMS call cut off by the request's deadline does.
type ctxKMS struct {
	*testKMS
	cancel context.CancelFunc
}

func (k *ctxKMS) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	k.cancel()
	return nil, fmt.Errorf("kms: %w", ctx.Err())
}

// Issue 10 item 11: the context ending inside a wrapper's Unwrap is not a
// failed unlock.
func TestUnlockWithWrapperContextIsTyped(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "u", "the right passphrase")
	kms := newTestKMS("kms")
	must.NoError(t, v.AddWrapperSlot(bg, u, kms))
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	_, err := v.UnlockWithWrapper(ctx, "u", &ctxKMS{testKMS: kms, cancel: cancel})
	must.ErrorIs(t, err, context.Canceled)
	must.NotErrorIs(t, err, ErrUnlockFailed)
	_, err = v.UnlockWithWrapper(bg, "nobody", kms)
	must.ErrorIs(t, err, ErrUnlockFailed)
	must.ErrorIs(t, err, ErrNoVault)
}

// Issue 10 item 15: an older ciphertext of the same record, user and
// context refuses with ErrRollback; the version is authenticated.
func TestOpenVersionRefusesRollback(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's long passphrase")
	rc := []byte("notes/7/body")
	v1, err := u.SealVersion([]byte("first draft"), rc, 1)
	must.NoError(t, err)
	v2, err := u.SealVersion([]byte("second draft"), rc, 2)
	must.NoError(t, err)
	must.Len(t, v2, versionedHeaderLen+gcmNonceLen+len("second draft")+gcmTagLen)

	pt, ver, err := u.OpenVersion(v2, rc, 2)
	must.NoError(t, err)
	must.Equal(t, "second draft", string(pt))
	must.EqualValues(t, 2, ver)

	// The attacker puts the older ciphertext back.
	pt, ver, err = u.OpenVersion(v1, rc, 2)
	must.ErrorIs(t, err, ErrRollback)
	must.NotErrorIs(t, err, ErrDecrypt)
	must.Nil(t, pt)
	must.EqualValues(t, 1, ver)
	// Plain Open does not check versions (documented).
	pt, err = u.Open(v1, rc)
	must.NoError(t, err)
	must.Equal(t, "first draft", string(pt))

	// Records from Seal are version 0: readable, never newer than 1.
	old, err := u.Seal([]byte("before versions"), rc)
	must.NoError(t, err)
	pt, ver, err = u.OpenVersion(old, rc, 0)
	must.NoError(t, err)
	must.Equal(t, "before versions", string(pt))
	must.EqualValues(t, 0, ver)
	_, _, err = u.OpenVersion(old, rc, 1)
	must.ErrorIs(t, err, ErrRollback)

	// A version byte edited (to look newer) fails authentication.
	for i := envelopeHeaderLen; i < versionedHeaderLen; i++ {
		c := bytes.Clone(v1)
		c[i] ^= 0x01
		_, _, err := u.OpenVersion(c, rc, 0)
		must.ErrorIs(t, err, ErrDecrypt, "byte %d", i)
		_, err = u.Open(c, rc)
		must.ErrorIs(t, err, ErrDecrypt, "byte %d", i)
	}
	// A version moved from a newer record to an older one fails.
	moved := bytes.Clone(v1)
	copy(moved[envelopeHeaderLen:versionedHeaderLen], v2[envelopeHeaderLen:versionedHeaderLen])
	_, _, err = u.OpenVersion(moved, rc, 2)
	must.ErrorIs(t, err, ErrDecrypt)
	other, err := u.SealVersion([]byte("other record"), []byte("notes/8/body"), 9)
	must.NoError(t, err)
	moved = bytes.Clone(v1)
	copy(moved[envelopeHeaderLen:versionedHeaderLen], other[envelopeHeaderLen:versionedHeaderLen])
	_, _, err = u.OpenVersion(moved, rc, 2)
	must.ErrorIs(t, err, ErrDecrypt)
	// A versioned record downgraded to format 1 (version stripped) fails,
	// and so does a format 1 record dressed up as format 2.
	down := append([]byte{envelopeFormat}, v1[1:envelopeHeaderLen]...)
	down = append(down, v1[versionedHeaderLen:]...)
	_, _, err = u.OpenVersion(down, rc, 0)
	must.ErrorIs(t, err, ErrDecrypt)
	up := append([]byte{envelopeFormatVersioned}, old[1:envelopeHeaderLen]...)
	up = binary.BigEndian.AppendUint64(up, 5)
	up = append(up, old[envelopeHeaderLen:]...)
	_, _, err = u.OpenVersion(up, rc, 0)
	must.ErrorIs(t, err, ErrDecrypt)
	// Another user or context still fails as before.
	_, _, err = u.OpenVersion(v2, []byte("notes/8/body"), 0)
	must.ErrorIs(t, err, ErrDecrypt)
	// Truncated below a versioned envelope's overhead.
	_, _, err = u.OpenVersion(v2[:versionedHeaderLen+gcmNonceLen+gcmTagLen-1], rc, 0)
	must.ErrorIs(t, err, ErrDecrypt)
}

// Issue 10 item 15: Reseal and ReencryptAll keep the format and record
// version, so a rollback is still refused after a rotation.
func TestResealKeepsRecordVersion(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "bob", "bob's long passphrase here")
	rc := []byte("notes/1/body")
	v6, _ := u.SealVersion([]byte("six"), rc, 6)
	v7, _ := u.SealVersion([]byte("seven"), rc, 7)
	plain, _ := u.Seal([]byte("plain"), []byte("notes/2/body"))
	u2, _, err := v.RotateMasterKey(bg, "bob", []byte("bob's long passphrase here"))
	must.NoError(t, err)

	out7, changed, err := u2.Reseal(v7, rc)
	must.NoError(t, err)
	must.True(t, changed)
	must.EqualValues(t, envelopeFormatVersioned, out7[0])
	must.EqualValues(t, u2.KeyVersion(), binary.BigEndian.Uint32(out7[2:]))
	pt, ver, err := u2.OpenVersion(out7, rc, 7)
	must.NoError(t, err)
	must.Equal(t, "seven", string(pt))
	must.EqualValues(t, 7, ver)

	src := &appRecords{rows: map[string]StoredRecord{
		"a": {Key: "a", Context: rc, Sealed: v6},
		"b": {Key: "b", Context: []byte("notes/2/body"), Sealed: plain},
	}}
	p, err := u2.ReencryptAll(bg, src, "", nil)
	must.NoError(t, err)
	must.Equal(t, 2, p.Resealed)
	_, ver, err = u2.OpenVersion(src.rows["a"].Sealed, rc, 7)
	must.ErrorIs(t, err, ErrRollback, "the walk must not refresh an old version")
	must.EqualValues(t, 6, ver)
	must.EqualValues(t, envelopeFormat, src.rows["b"].Sealed[0], "a Seal record stays format 1")
	_, ver, err = u2.OpenVersion(src.rows["b"].Sealed, []byte("notes/2/body"), 0)
	must.NoError(t, err)
	must.EqualValues(t, 0, ver)
}

// Issue 10 item 16: Reseal wipes the plaintext it decrypted, whether or
// not it re-sealed it. Not parallel: it sets a package hook.
func TestResealWipesPlaintext(t *testing.T) {
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "carol", "carol's long passphrase")
	old, _ := u.SealVersion([]byte("a secret worth wiping"), []byte("c"), 3)
	u2, _, err := v.RotateMasterKey(bg, "carol", []byte("carol's long passphrase"))
	must.NoError(t, err)
	cur, _ := u2.Seal([]byte("another secret to wipe"), []byte("c"))

	var seen [][]byte
	hookResealPlaintext = func(pt []byte) { seen = append(seen, pt) }
	defer func() { hookResealPlaintext = nil }()
	for _, sealed := range [][]byte{old, cur} {
		_, _, err := u2.Reseal(sealed, []byte("c"))
		must.NoError(t, err)
	}
	must.Len(t, seen, 2)
	for i, pt := range seen {
		must.Equal(t, make([]byte, len(pt)), pt, "plaintext %d not wiped", i)
		must.NotEmpty(t, pt)
	}
}

// Issue 10 item 16: when RotateMasterKey fails after opening the old keys
// and making the new one, it wipes all of them. Not parallel: it sets a
// package hook.
func TestRotateWipesKeysOnError(t *testing.T) {
	v, _ := newTestVault(t)
	const pass = "dave's long passphrase"
	u := mustCreate(t, v, "dave", pass)
	kms := newTestKMS("kms")
	must.NoError(t, v.AddWrapperSlot(bg, u, kms))
	// A first rotation leaves a retired key in the record.
	_, _, err := v.RotateMasterKey(bg, "dave", []byte(pass), kms)
	must.NoError(t, err)

	var keys [][]byte
	hookRotateKeys = func(mk []byte, retired map[uint32][]byte) {
		keys = append(keys, mk)
		for _, k := range retired {
			keys = append(keys, k)
		}
	}
	defer func() { hookRotateKeys = nil }()
	// The second fails late: the wrapper slot's KeyWrapper is missing.
	_, _, err = v.RotateMasterKey(bg, "dave", []byte(pass))
	must.ErrorIs(t, err, ErrInvalidInput)
	must.Len(t, keys, 3, "the new key, the retired one and the old current one")
	for i, k := range keys {
		must.Len(t, k, masterKeyLen)
		must.Equal(t, make([]byte, masterKeyLen), k, "key %d not wiped", i)
	}
	// And a rotation that succeeds hands the keys on intact.
	keys = nil
	u3, _, err := v.RotateMasterKey(bg, "dave", []byte(pass), kms)
	must.NoError(t, err)
	must.Len(t, keys, 3)
	for i, k := range keys {
		must.NotEqual(t, make([]byte, masterKeyLen), k, "key %d wiped on success", i)
	}
	must.Equal(t, []uint32{1, 2}, u3.RetiredVersions())
}

// must is a few assertions in the manner of testify's require (not a
// dependency of the module): each one stops the test on failure.
var must mustT

type mustT struct{}

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func (mustT) NoError(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v%s", err, msg(args))
	}
}

func (mustT) ErrorIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v does not match %v%s", err, target, msg(args))
	}
}

func (mustT) NotErrorIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if errors.Is(err, target) {
		t.Fatalf("error %v matches %v%s", err, target, msg(args))
	}
}

func (mustT) ErrorAs(t testing.TB, err error, target any, args ...any) {
	t.Helper()
	if !errors.As(err, target) {
		t.Fatalf("error %v is not a %T%s", err, target, msg(args))
	}
}

func (mustT) Equal(t testing.TB, want, got any, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("got %v, want %v%s", got, want, msg(args))
	}
}

func (mustT) NotEqual(t testing.TB, notWant, got any, args ...any) {
	t.Helper()
	if reflect.DeepEqual(notWant, got) {
		t.Fatalf("got %v%s", got, msg(args))
	}
}

// EqualValues compares numbers of any integer type.
func (mustT) EqualValues(t testing.TB, want, got any, args ...any) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("got %v, want %v%s", got, want, msg(args))
	}
}

func (mustT) Len(t testing.TB, v any, n int, args ...any) {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		t.Fatalf("length %d, want %d%s", l, n, msg(args))
	}
}

func (mustT) NotEmpty(t testing.TB, v any, args ...any) {
	t.Helper()
	if reflect.ValueOf(v).Len() == 0 {
		t.Fatalf("empty%s", msg(args))
	}
}

func (mustT) Nil(t testing.TB, v any, args ...any) {
	t.Helper()
	if v != nil && !reflect.ValueOf(v).IsNil() {
		t.Fatalf("got %v, want nil%s", v, msg(args))
	}
}

func (mustT) True(t testing.TB, b bool, args ...any) {
	t.Helper()
	if !b {
		t.Fatalf("false%s", msg(args))
	}
}
