package totp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
)

func proofRing(t testing.TB, current string, ids ...string) *KeyRing {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		keys[id] = proofRingKey(id)
	}
	r, err := NewKeyRing(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// proofRingKey is a fixed key per ID, so that two rings built with the
// same ID hold the same key.
func proofRingKey(id string) []byte {
	k := bytes.Repeat([]byte{0x5c}, KeyRingKeyLen)
	copy(k, id)
	return k
}

func TestKeyRingRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := proofRing(t, "k1", "k1")
	pt, ad := []byte("a TOTP secret of twenty"), []byte("ad")
	sealed, err := r.Seal(ctx, "alice", pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("sealed form holds the plaintext")
	}
	again, _ := r.Seal(ctx, "alice", pt, ad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one plaintext are equal: no fresh nonce")
	}
	got, err := r.Open(ctx, "alice", sealed, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if r.Stale(sealed) || r.CurrentKeyID() != "k1" {
		t.Fatal("fresh seal is stale, or wrong current ID")
	}
	for name, open := range map[string]func() ([]byte, error){
		"other ad":   func() ([]byte, error) { return r.Open(ctx, "alice", sealed, []byte("ae")) },
		"no ad":      func() ([]byte, error) { return r.Open(ctx, "alice", sealed, nil) },
		"other user": func() ([]byte, error) { return r.Open(ctx, "bob", sealed, ad) },
		"user/ad boundary": func() ([]byte, error) { // the user ID is length-prefixed, not concatenated
			return r.Open(ctx, "alic", sealed, append([]byte("e"), ad...))
		},
		"unknown key ID": func() ([]byte, error) { return proofRing(t, "k2", "k2").Open(ctx, "alice", sealed, ad) },
		"same ID, other key": func() ([]byte, error) {
			other, _ := NewKeyRing("k1", map[string][]byte{"k1": bytes.Repeat([]byte{1}, KeyRingKeyLen)})
			return other.Open(ctx, "alice", sealed, ad)
		},
		"renamed key ID": func() ([]byte, error) { // k1's ciphertext relabelled as k2, which holds the same key
			two, _ := NewKeyRing("k2", map[string][]byte{"k2": proofRingKey("k1")})
			s := bytes.Clone(sealed)
			s[3] = '2'
			return two.Open(ctx, "alice", s, ad)
		},
		"flipped tag": func() ([]byte, error) {
			s := bytes.Clone(sealed)
			s[len(s)-1] ^= 1
			return r.Open(ctx, "alice", s, ad)
		},
		"truncated":  func() ([]byte, error) { return r.Open(ctx, "alice", sealed[:len(sealed)-1], ad) },
		"header":     func() ([]byte, error) { return r.Open(ctx, "alice", sealed[:4], ad) },
		"empty":      func() ([]byte, error) { return r.Open(ctx, "alice", nil, ad) },
		"bad format": func() ([]byte, error) { s := bytes.Clone(sealed); s[0] = 2; return r.Open(ctx, "alice", s, ad) },
		"id length":  func() ([]byte, error) { s := bytes.Clone(sealed); s[1] = 0xff; return r.Open(ctx, "alice", s, ad) },
	} {
		if pt, err := open(); !errors.Is(err, ErrUnsealFailed) || pt != nil {
			t.Errorf("%s: Open = %q, %v; want ErrUnsealFailed", name, pt, err)
		}
	}
}

func TestKeyRingStale(t *testing.T) {
	ctx := context.Background()
	old := proofRing(t, "k1", "k1")
	sealed, _ := old.Seal(ctx, "alice", []byte("secret"), nil)
	both := proofRing(t, "k2", "k1", "k2")
	if !both.Stale(sealed) {
		t.Fatal("a k1 seal is not stale under current k2")
	}
	if pt, err := both.Open(ctx, "alice", sealed, nil); err != nil || string(pt) != "secret" {
		t.Fatalf("the ring with k1 and k2 does not open k1's seal: %v", err)
	}
	fresh, _ := both.Seal(ctx, "alice", []byte("secret"), nil)
	if both.Stale(fresh) || !bytes.HasPrefix(fresh, []byte{keyRingFormat, 2, 'k', '2'}) {
		t.Fatalf("a seal under the current key: stale %v, header %x", both.Stale(fresh), fresh[:4])
	}
	if both.Stale(nil) || both.Stale([]byte{9, 9}) {
		t.Fatal("garbage reported stale")
	}
	var nilRing *KeyRing
	if nilRing.Stale(sealed) || nilRing.CurrentKeyID() != "" {
		t.Fatal("nil ring")
	}
	if _, err := nilRing.Seal(ctx, "a", nil, nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("nil ring Seal: %v", err)
	}
	if _, err := nilRing.Open(ctx, "a", sealed, nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("nil ring Open: %v", err)
	}
}

func TestNewKeyRingBounds(t *testing.T) {
	secretKey := bytes.Repeat([]byte{0xab}, KeyRingKeyLen)
	good := func() map[string][]byte { return map[string][]byte{"k1": bytes.Clone(secretKey)} }
	for _, c := range []struct {
		name    string
		current string
		keys    map[string][]byte
	}{
		{"nil map", "k1", nil},
		{"current missing", "k2", good()},
		{"empty current", "", good()},
		{"short key", "k1", map[string][]byte{"k1": secretKey[:31]}},
		{"long key", "k1", map[string][]byte{"k1": append(bytes.Clone(secretKey), 0xab)}},
		{"AES-128 key", "k1", map[string][]byte{"k1": secretKey[:16]}},
		{"nil key", "k1", map[string][]byte{"k1": nil}},
		{"bad other key", "k1", map[string][]byte{"k1": bytes.Clone(secretKey), "k0": secretKey[:20]}},
		{"empty ID", "", map[string][]byte{"": bytes.Clone(secretKey)}},
		{"long ID", strings.Repeat("k", MaxKeyIDLen+1), map[string][]byte{strings.Repeat("k", MaxKeyIDLen+1): bytes.Clone(secretKey)}},
		{"space in ID", "k 1", map[string][]byte{"k 1": bytes.Clone(secretKey)}},
		{"control in ID", "k\n", map[string][]byte{"k\n": bytes.Clone(secretKey)}},
		{"non-ASCII ID", "clé", map[string][]byte{"clé": bytes.Clone(secretKey)}},
		{"bad other ID", "k1", map[string][]byte{"k1": bytes.Clone(secretKey), "k\x00": bytes.Clone(secretKey)}},
	} {
		r, err := NewKeyRing(c.current, c.keys)
		if !errors.Is(err, ErrInvalidInput) || r != nil {
			t.Errorf("%s: NewKeyRing = %v, %v; want ErrInvalidInput", c.name, r, err)
			continue
		}
		msg := err.Error()
		for _, form := range []string{string(secretKey[:8]), hex.EncodeToString(secretKey[:8]), fmt.Sprintf("%x", secretKey[:8]),
			base64.StdEncoding.EncodeToString(secretKey[:9]), fmt.Sprint(secretKey[:4])[1:12], "171 171"} {
			if strings.Contains(msg, form) {
				t.Errorf("%s: error %q shows key bytes", c.name, msg)
			}
		}
	}
	if _, err := NewKeyRing(strings.Repeat("k", MaxKeyIDLen), map[string][]byte{strings.Repeat("k", MaxKeyIDLen): secretKey}); err != nil {
		t.Fatalf("an ID of MaxKeyIDLen: %v", err)
	}
	// The ring keeps its own copy of the key.
	keys := good()
	r, err := NewKeyRing("k1", keys)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := r.Seal(context.Background(), "a", []byte("x"), nil)
	clear(keys["k1"])
	if _, err := r.Open(context.Background(), "a", sealed, nil); err != nil {
		t.Fatalf("after the caller cleared its key: %v", err)
	}
}

// A factor record copied to another user does not open for them: Verify
// fails with an error, never a success.
func TestRecordCopiedToAnotherUser(t *testing.T) {
	e := newProofEnv(t, nil)
	en, _ := e.enroll("user-a")
	dataA := e.stored("user-a")
	if err := e.store.PutFactors(e.ctx, "user-b", dataA, 0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultPeriod)
	code := e.phone(en, SHA1, 6)
	err := e.auth.Verify(e.ctx, "user-b", code, ratelimit.Source{})
	if err == nil {
		t.Fatal("user A's record verified user A's code for user B")
	}
	if !errors.Is(err, ErrUnsealFailed) {
		t.Fatalf("user A's record for user B: %v; want ErrUnsealFailed", err)
	}
	// A's own code still works for A.
	if err := e.auth.Verify(e.ctx, "user-a", code, ratelimit.Source{}); err != nil {
		t.Fatalf("user A: %v", err)
	}
	// Nor do A's recovery codes (hashed with A's ID) work for B.
	e2 := newProofEnv(t, nil)
	_, c := e2.enroll("user-a")
	if err := e2.store.PutFactors(e2.ctx, "user-b", e2.stored("user-a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.auth.UseRecoveryCode(e2.ctx, "user-b", c.RecoveryCodes[0].Reveal(), ratelimit.Source{}); err == nil {
		t.Fatal("user A's recovery code worked for user B from a copied record")
	}
}

// TOT-07: nothing the store was ever given holds the secret, raw or in
// base32 (either case, with or without padding), or the setup token.
func TestStoreHoldsNoSecret(t *testing.T) {
	e := newProofEnv(t, nil)
	en, _ := e.enroll(proofUser)
	e.clock.Advance(DefaultPeriod)
	if err := e.auth.Verify(e.ctx, proofUser, e.phone(en, SHA1, 6), ratelimit.Source{}); err != nil {
		t.Fatal(err)
	}
	secretB32 := en.Secret()
	raw := decodeSecret(t, secretB32)
	forms := [][]byte{raw, raw[:8], raw[12:], []byte(secretB32), []byte(strings.ToLower(secretB32)), []byte(secretB32[:16]),
		[]byte(hex.EncodeToString(raw)), []byte(base64.StdEncoding.EncodeToString(raw)[:16])}
	written := e.store.all()
	if len(written) < 2 {
		t.Fatalf("%d records written, want the enrollment and the verification", len(written))
	}
	for i, data := range append(written, e.stored(proofUser)) {
		for _, f := range forms {
			if bytes.Contains(data, f) {
				t.Fatalf("stored record %d holds the secret (%q)", i, f)
			}
		}
		if bytes.Contains(data, []byte(en.Token[:20])) {
			t.Fatalf("stored record %d holds the setup token", i)
		}
	}
	// And the record's sealed secret opens to it only with the ring.
	rec, err := decodeRecord(e.stored(proofUser))
	if err != nil || len(rec.creds) != 1 {
		t.Fatalf("decodeRecord: %v", err)
	}
	pt, err := e.ring.Open(e.ctx, proofUser, rec.creds[0].sealed, secretAD(proofUser, rec.creds[0].id))
	if err != nil || !bytes.Equal(pt, raw) {
		t.Fatalf("the sealed secret does not open to the enrolled one: %v", err)
	}
}

// Key rotation: enroll under {k1}; under {k1, k2 current} Verify works and
// Reseal changes the record once; then {k2} alone verifies.
func TestKeyRotation(t *testing.T) {
	e := newProofEnv(t, nil)
	e.ring = proofRing(t, "k1", "k1")
	e.auth.cfg.Sealer = e.ring
	en, _ := e.enroll(proofUser)
	step := func() string { e.clock.Advance(DefaultPeriod); return e.phone(en, SHA1, 6) }

	if changed, err := e.auth.Reseal(e.ctx, proofUser); err != nil || changed {
		t.Fatalf("Reseal under the enrolling ring = %v, %v; want false", changed, err)
	}
	e.auth.cfg.Sealer = proofRing(t, "k2", "k1", "k2")
	if err := e.auth.Verify(e.ctx, proofUser, step(), ratelimit.Source{}); err != nil {
		t.Fatalf("Verify under {k1, k2}: %v", err)
	}
	before := e.stored(proofUser)
	if changed, err := e.auth.Reseal(e.ctx, proofUser); err != nil || !changed {
		t.Fatalf("first Reseal = %v, %v; want true", changed, err)
	}
	if bytes.Equal(before, e.stored(proofUser)) {
		t.Fatal("Reseal reported a change but the record is the same")
	}
	after := e.stored(proofUser)
	if changed, err := e.auth.Reseal(e.ctx, proofUser); err != nil || changed {
		t.Fatalf("second Reseal = %v, %v; want false", changed, err)
	}
	if !bytes.Equal(after, e.stored(proofUser)) {
		t.Fatal("a Reseal with nothing stale wrote the record")
	}
	e.auth.cfg.Sealer = proofRing(t, "k2", "k2")
	if err := e.auth.Verify(e.ctx, proofUser, step(), ratelimit.Source{}); err != nil {
		t.Fatalf("Verify under {k2} after Reseal: %v", err)
	}
	// The last accepted step survived the Reseal: the code just used is
	// still refused.
	code := e.phone(en, SHA1, 6)
	if err := e.auth.Verify(e.ctx, proofUser, code, ratelimit.Source{}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay after rotation: %v", err)
	}
	// Without Reseal, {k2} alone cannot open a k1 record.
	e2 := newProofEnv(t, nil)
	e2.auth.cfg.Sealer = proofRing(t, "k1", "k1")
	en2, _ := e2.enroll(proofUser)
	e2.auth.cfg.Sealer = proofRing(t, "k2", "k2")
	e2.clock.Advance(DefaultPeriod)
	if err := e2.auth.Verify(e2.ctx, proofUser, e2.phone(en2, SHA1, 6), ratelimit.Source{}); !errors.Is(err, ErrUnsealFailed) {
		t.Fatalf("Verify of a k1 record under {k2}: %v; want ErrUnsealFailed", err)
	}
}

// VaultSealer: the secrets open only in a context holding this user's
// unlocked vault.
func TestVaultSealer(t *testing.T) {
	v, err := vault.New(memstore.New(), vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alice, err := v.Create(ctx, "alice", []byte("alice's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := v.Create(ctx, "bob", []byte("bob's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	e := newProofEnv(t, func(c *Config) { c.Sealer = VaultSealer() })
	withAlice, withBob := WithVault(ctx, alice), WithVault(ctx, bob)

	if _, err := e.auth.Begin(ctx, "alice", "alice@example.com"); !errors.Is(err, ErrVaultLocked) {
		t.Fatalf("Begin without a vault: %v; want ErrVaultLocked", err)
	}
	if _, err := e.auth.Begin(withBob, "alice", "alice@example.com"); !errors.Is(err, ErrVaultLocked) {
		t.Fatalf("Begin with bob's vault: %v; want ErrVaultLocked", err)
	}
	if _, err := e.auth.Begin(WithVault(ctx, nil), "alice", "alice@example.com"); !errors.Is(err, ErrVaultLocked) {
		t.Fatalf("Begin with a nil vault: %v; want ErrVaultLocked", err)
	}
	en, err := e.auth.Begin(withAlice, "alice", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	code := e.phone(en, SHA1, 6)
	for name, c := range map[string]context.Context{"no vault": ctx, "bob's vault": withBob} {
		if _, err := e.auth.Pending(c, "alice", en.Token); !errors.Is(err, ErrVaultLocked) {
			t.Fatalf("Pending with %s: %v; want ErrVaultLocked", name, err)
		}
		if _, err := e.auth.Confirm(c, "alice", en.Token, code, ratelimit.Source{}, ConfirmOptions{}); !errors.Is(err, ErrVaultLocked) {
			t.Fatalf("Confirm with %s: %v; want ErrVaultLocked", name, err)
		}
	}
	if _, err := e.auth.Confirm(withAlice, "alice", en.Token, code, ratelimit.Source{}, ConfirmOptions{}); err != nil {
		t.Fatalf("Confirm with alice's vault: %v", err)
	}
	e.clock.Advance(DefaultPeriod)
	code = e.phone(en, SHA1, 6)
	for name, c := range map[string]context.Context{"no vault": ctx, "bob's vault": withBob} {
		err := e.auth.Verify(c, "alice", code, ratelimit.Source{})
		if !errors.Is(err, ErrVaultLocked) {
			t.Fatalf("Verify with %s: %v; want ErrVaultLocked", name, err)
		}
	}
	if err := e.auth.Verify(withAlice, "alice", code, ratelimit.Source{}); err != nil {
		t.Fatalf("Verify with alice's vault: %v", err)
	}
	// The stored secret is under alice's vault: no KeyRing-like plaintext.
	raw := decodeSecret(t, en.Secret())
	if bytes.Contains(e.stored("alice"), raw) || bytes.Contains(e.stored("alice"), []byte(en.Secret())) {
		t.Fatal("the vault-sealed record holds the secret")
	}
	if changed, err := e.auth.Reseal(withAlice, "alice"); err != nil || changed {
		t.Fatalf("Reseal with VaultSealer = %v, %v; want false", changed, err)
	}
	// Bob's vault cannot open alice's record even when the record is
	// copied to bob.
	if err := e.store.PutFactors(ctx, "bob", e.stored("alice"), 0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultPeriod)
	if err := e.auth.Verify(withBob, "bob", e.phone(en, SHA1, 6), ratelimit.Source{}); err == nil {
		t.Fatal("alice's record verified for bob under bob's vault")
	}
}

// ResealAll walks users: each record under the old key is re-sealed once,
// users without a record (or already current) count as unchanged, and
// afterwards the old key can leave the ring.
func TestResealAllRetiresAKey(t *testing.T) {
	e := newProofEnv(t, nil)
	e.auth.cfg.Sealer = proofRing(t, "k1", "k1")
	users := []string{"u1", "u2", "u3"}
	enrollments := map[string]*Enrollment{}
	for _, u := range users {
		enrollments[u], _ = e.enroll(u)
	}
	e.auth.cfg.Sealer = proofRing(t, "k2", "k1", "k2")
	walk := slices.Values(append(slices.Clone(users), "nobody"))
	if changed, err := e.auth.ResealAll(e.ctx, walk); err != nil || changed != 3 {
		t.Fatalf("ResealAll = %d, %v; want 3 changed", changed, err)
	}
	if changed, err := e.auth.ResealAll(e.ctx, walk); err != nil || changed != 0 {
		t.Fatalf("second ResealAll = %d, %v; want 0", changed, err)
	}
	e.auth.cfg.Sealer = proofRing(t, "k2", "k2")
	e.clock.Advance(DefaultPeriod)
	for _, u := range users {
		if err := e.auth.Verify(e.ctx, u, e.phone(enrollments[u], SHA1, 6), ratelimit.Source{}); err != nil {
			t.Errorf("%s under {k2} after ResealAll: %v", u, err)
		}
	}
	if _, err := e.auth.ResealAll(e.ctx, slices.Values([]string{""})); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("ResealAll over an empty user ID: %v, want ErrInvalidInput", err)
	}
}
