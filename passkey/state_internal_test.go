package passkey

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// State, policy and lockout tests (PKY-08, PKY-09, PKY-15, PKY-16, the
// lockout, backup state and account deletion), on the recorded browser
// ceremonies of the harness: one registration (sign count 1) and three
// discoverable assertions (counts 2, 3, 4; salts A, A, B), backup
// eligibility 0.

// stLogin logs b in as userID with the factors f (zero: a password), and
// unlocks the session's vault (created on first use) when unlock is set.
func stLogin(h *harness, b *browser, userID string, f session.Factors, pending, unlock bool) {
	h.t.Helper()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if err := h.sessions.Login(r.Context(), userID, session.LoginOptions{Factor: f, SecondFactorPending: pending}); err != nil {
			h.t.Fatal(err)
		}
	})
	if unlock {
		stUnlockSession(h, b, userID)
	}
}

// stUnlockSession unlocks b's session's vault with the passphrase,
// creating the vault on first use.
func stUnlockSession(h *harness, b *browser, userID string) {
	h.t.Helper()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		u, err := h.vault.Unlock(r.Context(), userID, []byte(testPassphrase))
		if errors.Is(err, vault.ErrNoVault) {
			u, err = h.vault.Create(r.Context(), userID, []byte(testPassphrase))
		}
		if err != nil {
			h.t.Fatal(err)
		}
		if err := h.sessions.Unlock(r.Context(), u); err != nil {
			h.t.Fatal(err)
		}
	})
}

// stStored returns userID's stored passkey record, raw and decoded.
func stStored(h *harness, userID string) (storage.PasskeyRecord, *record) {
	h.t.Helper()
	sr, err := h.store.GetPasskeys(context.Background(), userID)
	if err != nil {
		h.t.Fatalf("GetPasskeys(%s): %v", userID, err)
	}
	rec, err := decodeRecord(sr)
	if err != nil {
		h.t.Fatal(err)
	}
	return sr, rec
}

// stEdit changes the user's first stored credential, as an earlier
// assertion would have.
func stEdit(h *harness, userID string, edit func(*credential)) {
	h.t.Helper()
	_, rec := stStored(h, userID)
	edit(&rec.creds[0])
	if err := h.m.save(context.Background(), rec); err != nil {
		h.t.Fatal(err)
	}
}

// stSameRecord fails unless userID's stored record is still want, byte
// for byte and at the same version.
func stSameRecord(h *harness, userID string, want storage.PasskeyRecord) {
	h.t.Helper()
	got, _ := stStored(h, userID)
	if got.Version != want.Version || !bytes.Equal(got.Data, want.Data) {
		h.t.Fatalf("stored record changed: version %d → %d", want.Version, got.Version)
	}
}

// stTamperSig returns recorded assertion i with its signature's last byte
// flipped: well-formed, wrong.
func stTamperSig(h *harness, i int) []byte {
	h.t.Helper()
	a := h.cer.Assertions[i].Response
	a.Response.Signature = slices.Clone(a.Response.Signature)
	a.Response.Signature[len(a.Response.Signature)-1] ^= 1
	return mustJSON(h.t, a)
}

// stCountDummy makes h.m's dummy key count its uses: each dummyVerify
// asks the key's curve for its parameters (the curve is P-256 still, so
// the verification does the same work).
func stCountDummy(h *harness) *atomic.Int64 {
	n := new(atomic.Int64)
	k := *h.m.dummyKey
	k.Curve = stCountingCurve{Curve: elliptic.P256(), n: n}
	h.m.dummyKey = &k
	return n
}

type stCountingCurve struct {
	elliptic.Curve
	n *atomic.Int64
}

func (c stCountingCurve) Params() *elliptic.CurveParams {
	c.n.Add(1)
	return c.Curve.Params()
}

func stHasEvent(h *harness, kind keyhold.EventKind) bool {
	return slices.Contains(h.events.kinds(), kind)
}

func stCountEvents(h *harness, kind keyhold.EventKind) int {
	n := 0
	for _, k := range h.events.kinds() {
		if k == kind {
			n++
		}
	}
	return n
}

// stLogLines returns the audit log lines of event.
func stLogLines(h *harness, event string) []map[string]any {
	var out []map[string]any
	for _, line := range bytes.Split(h.logs.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == event {
			out = append(out, m)
		}
	}
	return out
}

// stRegistered is a harness with alice's recorded passkey registered from
// a password session with the vault unlocked (so it can unlock).
func stRegistered(t *testing.T, edit func(*Config)) (*harness, *browser) {
	t.Helper()
	h := newHarness(t, edit)
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatalf("FinishRegistration: %v\n%s", err, h.logs)
	}
	return h, a
}

// TestSignCountRegressionRefused: under the default policy, a counter
// that does not grow for a credential that cannot be synced (BE=0) is
// refused with ErrLoginFailed and ErrPossibleClone, an event and an
// audit line, and nothing is stored (PKY-08).
func TestSignCountRegressionRefused(t *testing.T) {
	for _, policy := range []SignCountPolicy{RejectUnlessSynced, RejectAlways} {
		h, _ := stRegistered(t, func(c *Config) { c.SignCountPolicy = policy })
		// Stored 3, assertion 1 carries 3.
		stEdit(h, "alice", func(c *credential) { c.signCount = 3 })
		before, _ := stStored(h, "alice")
		b := newBrowser()
		_, err := h.loginWith(b, 1, nil)
		if !errors.Is(err, ErrLoginFailed) || !errors.Is(err, ErrPossibleClone) {
			t.Fatalf("policy %d: equal counter: %v, want ErrLoginFailed and ErrPossibleClone", policy, err)
		}
		if h.current(b).UserID != "" {
			t.Fatalf("policy %d: refused login left a session", policy)
		}
		stSameRecord(h, "alice", before)
		if !stHasEvent(h, keyhold.PasskeyCloneWarning) {
			t.Errorf("policy %d: no PasskeyCloneWarning event: %v", policy, h.events.kinds())
		}
		lines := stLogLines(h, "authn_passkey_clone_warning")
		if len(lines) != 1 || lines[0]["refused"] != true || lines[0]["stored_count"] != float64(3) || lines[0]["count"] != float64(3) {
			t.Errorf("policy %d: clone warning log %v", policy, lines)
		}
	}
}

// TestSignCountReplayOfOlderAssertion: assertion 0 (count 2) replayed
// after assertion 1 (count 3) was accepted is a possible clone too.
func TestSignCountReplayOfOlderAssertion(t *testing.T) {
	h, _ := stRegistered(t, nil)
	if _, err := h.loginWith(newBrowser(), 1, nil); err != nil {
		t.Fatalf("login with count 3: %v", err)
	}
	before, rec := stStored(h, "alice")
	if rec.creds[0].signCount != 3 {
		t.Fatalf("stored count %d, want 3", rec.creds[0].signCount)
	}
	for _, i := range []int{0, 1} { // count 2, then 3 again
		_, err := h.loginWith(newBrowser(), i, nil)
		if !errors.Is(err, ErrLoginFailed) || !errors.Is(err, ErrPossibleClone) {
			t.Fatalf("assertion %d after count 3: %v, want ErrLoginFailed and ErrPossibleClone", i, err)
		}
	}
	stSameRecord(h, "alice", before)
	if n := stCountEvents(h, keyhold.PasskeyCloneWarning); n != 2 {
		t.Errorf("%d clone warnings, want 2", n)
	}
	// The next higher count still logs in.
	if _, err := h.loginWith(newBrowser(), 2, nil); err != nil {
		t.Fatalf("count 4 after 3: %v", err)
	}
}

// TestSignCountFlagOnly: FlagOnly accepts a counter that did not grow,
// flags the credential (stored, listed, in the LoginResult), keeps the
// stored counter, and still warns.
func TestSignCountFlagOnly(t *testing.T) {
	h, _ := stRegistered(t, func(c *Config) { c.SignCountPolicy = FlagOnly })
	stEdit(h, "alice", func(c *credential) { c.signCount = 3 })
	b := newBrowser()
	res, err := h.loginWith(b, 0, nil) // count 2 under stored 3
	if err != nil {
		t.Fatalf("FlagOnly: %v", err)
	}
	if !res.ClonedCounter || !res.Credential.CloneWarning || h.current(b).UserID != "alice" {
		t.Fatalf("FlagOnly result %+v", res)
	}
	_, rec := stStored(h, "alice")
	if c := rec.creds[0]; !c.has(flagCloneWarning) || c.signCount != 3 || c.lastUsed.IsZero() {
		t.Fatalf("stored credential: flags %#x count %d last used %v", c.flags, c.signCount, c.lastUsed)
	}
	list, err := h.m.List(context.Background(), "alice")
	if err != nil || len(list) != 1 || !list[0].CloneWarning {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if !stHasEvent(h, keyhold.PasskeyCloneWarning) {
		t.Error("no PasskeyCloneWarning event")
	}
	if lines := stLogLines(h, "authn_passkey_clone_warning"); len(lines) != 1 || lines[0]["refused"] != false {
		t.Errorf("clone warning log %v", lines)
	}
	// A growing counter logs in unflagged; the flag stays.
	res, err = h.loginWith(newBrowser(), 2, nil)
	if err != nil || res.ClonedCounter || !res.Credential.CloneWarning || res.Credential.SignCount != 4 {
		t.Fatalf("count 4: %+v, %v", res, err)
	}
}

// TestFailedSignatureChangesNothing: an assertion with a bad signature
// (even one claiming a far higher counter) leaves the stored record as it
// was: counter, flags, last use (PKY-09).
func TestFailedSignatureChangesNothing(t *testing.T) {
	h, _ := stRegistered(t, nil)
	before, _ := stStored(h, "alice")
	b := newBrowser()
	if _, err := h.loginWith(b, 0, stTamperSig(h, 0)); !errors.Is(err, ErrLoginFailed) || errors.Is(err, ErrPossibleClone) {
		t.Fatalf("bad signature: %v, want ErrLoginFailed alone", err)
	}
	stSameRecord(h, "alice", before)
	// authenticatorData claiming count 100 and backup state, without a
	// signature over it.
	a := h.cer.Assertions[0].Response
	a.Response.AuthenticatorData = slices.Clone(a.Response.AuthenticatorData)
	a.Response.AuthenticatorData[33], a.Response.AuthenticatorData[34], a.Response.AuthenticatorData[35], a.Response.AuthenticatorData[36] = 0, 0, 0, 100
	if _, err := h.loginWith(b, 0, mustJSON(t, a)); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("tampered authenticatorData: %v, want ErrLoginFailed", err)
	}
	stSameRecord(h, "alice", before)
	if h.current(b).UserID != "" {
		t.Fatal("a refused assertion logged in")
	}
	// The genuine assertion still works: nothing advanced.
	if res, err := h.loginWith(b, 0, nil); err != nil || res.Credential.SignCount != 2 {
		t.Fatalf("genuine assertion: %+v, %v", res, err)
	}
}

type stSecondFactors struct{ enrolled bool }

func (s stSecondFactors) Enrolled(context.Context, string) (bool, error) { return s.enrolled, nil }

// stBeginRegistration runs BeginRegistration in b's session.
func stBeginRegistration(h *harness, b *browser) error {
	var err error
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, err = h.m.BeginRegistration(r, "alice@example.test") })
	return err
}

// TestAddPasskeyNeedsStepUp: adding a passkey needs a recent, complete
// session, multi-factor when the user has a passkey or TOTP (PKY-15).
func TestAddPasskeyNeedsStepUp(t *testing.T) {
	t.Run("stale", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.StepUpMaxAge = 2 * time.Minute })
		a := newBrowser()
		stLogin(h, a, "alice", 0, false, false)
		// Begun fresh, finished after StepUpMaxAge (within the ceremony's
		// timeout): refused, nothing stored.
		if err := stBeginRegistration(h, a); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(3 * time.Minute)
		if err := stBeginRegistration(h, a); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("BeginRegistration on a stale session: %v, want ErrStepUpRequired", err)
		}
		h.clock.Advance(-3 * time.Minute)
		if err := stBeginRegistration(h, a); err != nil {
			t.Fatal(err)
		}
		info := h.current(a)
		reg := h.cer.Registration
		h.rewrite(sessionChallengeID(ceremonyRegister, info.UserID, info.Ref), ceremonyRegister, info.UserID, info.Ref, reg.Challenge, reg.UserID, reg.PRFSalt)
		h.clock.Advance(3 * time.Minute)
		var err error
		h.do(a, func(w http.ResponseWriter, r *http.Request) {
			_, err = h.m.FinishRegistration(r, mustJSON(t, reg.Response), "Laptop")
		})
		if !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("FinishRegistration on a stale session: %v, want ErrStepUpRequired", err)
		}
		if _, err := h.store.GetPasskeys(context.Background(), "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused registration stored a record: %v", err)
		}
		if stHasEvent(h, keyhold.PasskeyAdded) {
			t.Fatal("PasskeyAdded for a refused registration")
		}
	})
	t.Run("pending second factor", func(t *testing.T) {
		h := newHarness(t, nil)
		a := newBrowser()
		stLogin(h, a, "alice", 0, true, false)
		if err := stBeginRegistration(h, a); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("pending session: %v, want ErrStepUpRequired", err)
		}
	})
	t.Run("no session", func(t *testing.T) {
		h := newHarness(t, nil)
		if err := stBeginRegistration(h, newBrowser()); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("no session: %v, want ErrStepUpRequired", err)
		}
	})
	t.Run("TOTP enrolled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.SecondFactors = stSecondFactors{enrolled: true} })
		a := newBrowser()
		stLogin(h, a, "alice", 0, false, false)
		if err := stBeginRegistration(h, a); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("password session with TOTP enrolled: %v, want ErrStepUpRequired", err)
		}
		stLogin(h, a, "alice", session.FactorPassword|session.FactorTOTP, false, false)
		if err := stBeginRegistration(h, a); err != nil {
			t.Fatalf("password+TOTP session: %v", err)
		}
	})
	t.Run("TOTP not enrolled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.SecondFactors = stSecondFactors{} })
		a := newBrowser()
		stLogin(h, a, "alice", 0, false, false)
		if err := stBeginRegistration(h, a); err != nil {
			t.Fatalf("password session, no second factor: %v", err)
		}
	})
	t.Run("has a passkey", func(t *testing.T) {
		h, a := stRegistered(t, nil)
		if err := stBeginRegistration(h, a); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("password session with a passkey: %v, want ErrStepUpRequired", err)
		}
		p := newBrowser()
		if _, err := h.loginWith(p, 0, nil); err != nil {
			t.Fatal(err)
		}
		if err := stBeginRegistration(h, p); err != nil {
			t.Fatalf("passkey session: %v", err)
		}
		h.clock.Advance(DefaultStepUpMaxAge + time.Second)
		if err := stBeginRegistration(h, p); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("stale passkey session: %v, want ErrStepUpRequired", err)
		}
	})
}

// TestAddRemoveRevokeNotify: adding and removing a passkey revoke the
// user's other sessions (not the one that did it, nor other users') and
// notify; removal needs a multi-factor step-up and, for a passkey that
// unlocks, an unlocked vault; a removed passkey fails at once and its
// vault slot is gone (PKY-15).
func TestAddRemoveRevokeNotify(t *testing.T) {
	h := newHarness(t, nil)
	a, other, bob := newBrowser(), newBrowser(), newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	stLogin(h, other, "alice", 0, false, false)
	stLogin(h, bob, "bob", 0, false, false)
	cred, err := h.register(a, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	if h.current(other).UserID != "" || h.current(a).UserID != "alice" || h.current(bob).UserID != "bob" {
		t.Fatal("adding a passkey: the other session stays, or this one or bob's went")
	}
	if got := h.events.kinds(); len(got) == 0 || got[len(got)-1] != keyhold.PasskeyAdded {
		t.Fatalf("events %v, want PasskeyAdded", got)
	}
	list, err := h.m.List(context.Background(), "alice")
	if err != nil || len(list) != 1 || !list[0].PRF || !list[0].CanUnlock || list[0].ID != cred.ID || list[0].Name != "Laptop" {
		t.Fatalf("List %+v, %v", list, err)
	}
	sid, err := vault.SecretSlotID(h.cer.Registration.Response.RawID)
	if err != nil {
		t.Fatal(err)
	}
	hasSlot := func() bool {
		slots, err := h.vault.Slots(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(slots, func(s vault.SlotInfo) bool { return s.ID == sid })
	}
	if !hasSlot() {
		t.Fatal("no vault slot for a passkey registered with the vault unlocked")
	}

	remove := func(b *browser, userID string) error {
		var err error
		h.do(b, func(w http.ResponseWriter, r *http.Request) { err = h.m.Remove(r, userID, cred.ID) })
		return err
	}
	// A session authenticated longer than StepUpMaxAge ago cannot remove
	// it; neither can bob's session, for alice.
	h.clock.Advance(DefaultStepUpMaxAge + time.Second)
	if err := remove(a, "alice"); !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("Remove from a stale session: %v, want ErrStepUpRequired", err)
	}
	stLogin(h, bob, "bob", 0, false, false)
	if err := remove(bob, "alice"); !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("Remove from bob's session: %v, want ErrStepUpRequired", err)
	}
	// A fresh password-only session, vault unlocked: ErrStepUpRequired
	// (removing needs a multi-factor session, as adding does); a fresh
	// passkey session with its vault locked: ErrVaultLocked. Nothing
	// changed.
	pw := newBrowser()
	stLogin(h, pw, "alice", 0, false, true)
	p := newBrowser()
	if _, err := h.loginWith(p, 0, nil); err != nil {
		t.Fatal(err)
	}
	stLogin(h, other, "alice", 0, false, false)
	before, _ := stStored(h, "alice")
	nEvents := len(h.events.kinds())
	if err := remove(p, "alice"); !errors.Is(err, ErrVaultLocked) {
		t.Fatalf("Remove with the vault locked: %v, want ErrVaultLocked", err)
	}
	if err := remove(pw, "alice"); !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("Remove from a fresh password session: %v, want ErrStepUpRequired", err)
	}
	stSameRecord(h, "alice", before)
	if !hasSlot() || h.current(other).UserID != "alice" || h.current(pw).UserID != "alice" || len(h.events.kinds()) != nEvents {
		t.Fatal("a refused Remove changed the slot, the sessions or notified")
	}
	// Unlocked with the passkey (count 3), the removal goes through.
	if _, err := h.unlockWith(p, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := remove(p, "alice"); err != nil {
		t.Fatalf("Remove: %v\n%s", err, h.logs)
	}
	if h.current(other).UserID != "" || h.current(p).UserID != "alice" || h.current(bob).UserID != "bob" {
		t.Fatal("removing a passkey: the other session stays, or this one or bob's went")
	}
	if got := h.events.kinds(); got[len(got)-1] != keyhold.PasskeyRemoved {
		t.Fatalf("events %v, want PasskeyRemoved last", got)
	}
	if hasSlot() {
		t.Fatal("the removed passkey's vault slot stays")
	}
	if list, err := h.m.List(context.Background(), "alice"); err != nil || len(list) != 0 {
		t.Fatalf("List after Remove: %+v, %v", list, err)
	}
	if _, err := h.store.UserByCredential(context.Background(), h.cer.Registration.Response.RawID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UserByCredential after Remove: %v", err)
	}
	// The next assertion (count 4, never seen) fails at once.
	n := newBrowser()
	if _, err := h.loginWith(n, 2, nil); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("login with a removed passkey: %v, want ErrLoginFailed", err)
	}
	if h.current(n).UserID != "" {
		t.Fatal("a removed passkey logged in")
	}
	if err := remove(p, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing it again: %v, want ErrNotFound", err)
	}
}

// TestRemoveNeedsStepUp: removing a passkey needs what adding one needs
// (PKY-15): a recent, complete, multi-factor session of the user. A
// pending login, no session and a fresh password-only session (TOTP
// enrolled or not, vault unlocked) are refused with ErrStepUpRequired and
// change nothing; a password and TOTP session, a passkey sign-in and a
// password session after a passkey step-up each remove one. Once the last
// passkey is gone, a password-only session of a user without TOTP may
// add one again (no has-had-a-passkey rule).
func TestRemoveNeedsStepUp(t *testing.T) {
	totp := false
	s := newSoftEnv(t, func(c *Config) { c.SecondFactors = stSecondFactorsFunc(func() bool { return totp }) })
	h := s.harness
	remove := func(b *browser, c *softCred) error {
		var err error
		s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
		return err
	}
	// Three passkeys, registered with the vault locked (no slots: the
	// vault plays no part here); the second and third from a passkey
	// session, as adding one to a user with a passkey needs.
	pw := newBrowser()
	stLogin(h, pw, "alice", 0, false, false)
	c1 := s.mustRegister(pw)
	p := newBrowser()
	if _, err := s.login(p, c1, nil); err != nil {
		t.Fatal(err)
	}
	c2, c3 := s.mustRegister(p), s.mustRegister(p)

	before, _ := stStored(h, "alice")
	nEvents := len(h.events.kinds())
	pending, fresh := newBrowser(), newBrowser()
	stLogin(h, pending, "alice", 0, true, false)
	stLogin(h, fresh, "alice", 0, false, true)
	for _, tc := range []struct {
		name string
		b    *browser
		totp bool
	}{
		{"a pending login", pending, false},
		{"no session", newBrowser(), false},
		{"a fresh password session, no TOTP", fresh, false},
		{"a fresh password session, TOTP enrolled", fresh, true},
	} {
		totp = tc.totp
		if err := remove(tc.b, c1); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("Remove from %s: %v, want ErrStepUpRequired", tc.name, err)
		}
	}
	totp = false
	stSameRecord(h, "alice", before)
	if len(h.events.kinds()) != nEvents || h.current(fresh).UserID != "alice" || h.current(p).UserID != "alice" {
		t.Fatal("a refused Remove notified or revoked sessions")
	}

	// A password and TOTP session removes c1.
	mfa := newBrowser()
	stLogin(h, mfa, "alice", session.FactorPassword|session.FactorTOTP, false, false)
	if err := remove(mfa, c1); err != nil {
		t.Fatalf("Remove from a password+TOTP session: %v", err)
	}
	if _, err := s.login(newBrowser(), c1, nil); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("login with the removed passkey: %v, want ErrLoginFailed", err)
	}
	// A passkey sign-in (c2) removes c3.
	p2 := newBrowser()
	if _, err := s.login(p2, c2, nil); err != nil {
		t.Fatal(err)
	}
	if err := remove(p2, c3); err != nil {
		t.Fatalf("Remove from a passkey session: %v", err)
	}
	// A password session is refused, then steps up with c2 and removes
	// it: the last passkey.
	su := newBrowser()
	stLogin(h, su, "alice", 0, false, false)
	if err := remove(su, c2); !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("Remove from a password session before its step-up: %v, want ErrStepUpRequired", err)
	}
	var opts []byte
	var err error
	s.doTLS(su, func(w http.ResponseWriter, r *http.Request) { opts, err = s.m.BeginStepUp(r) })
	if err != nil {
		t.Fatal(err)
	}
	answer := s.auth.get(t, c2, opts, nil)
	s.doTLS(su, func(w http.ResponseWriter, r *http.Request) { _, err = s.m.FinishStepUp(r, answer, ratelimit.Source{}) })
	if err != nil || !s.current(su).MultiFactor {
		t.Fatalf("FinishStepUp: %v, session %+v", err, s.current(su))
	}
	if err := remove(su, c2); err != nil {
		t.Fatalf("Remove after a passkey step-up: %v", err)
	}
	if list, err := s.m.List(context.Background(), "alice"); err != nil || len(list) != 0 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if n := stCountEvents(h, keyhold.PasskeyRemoved); n != 3 {
		t.Fatalf("%d PasskeyRemoved events, want 3", n)
	}
	// No passkey left and no TOTP: a fresh password-only session adds one
	// again, which then signs in.
	again := newBrowser()
	stLogin(h, again, "alice", 0, false, false)
	c4, _, err := s.register(again, nil)
	if err != nil {
		t.Fatalf("a password session of a user without passkeys or TOTP adds one: %v", err)
	}
	if _, err := s.login(newBrowser(), c4, nil); err != nil {
		t.Fatalf("login with the new passkey: %v", err)
	}
}

type stSecondFactorsFunc func() bool

func (f stSecondFactorsFunc) Enrolled(context.Context, string) (bool, error) { return f(), nil }

// TestRename: names are validated, the user's complete session is needed,
// and the new name is stored.
func TestRename(t *testing.T) {
	h, a := stRegistered(t, nil)
	id := encodeID(h.cer.Registration.Response.RawID)
	rename := func(b *browser, userID, id, name string) error {
		var err error
		h.do(b, func(w http.ResponseWriter, r *http.Request) { err = h.m.Rename(r, userID, id, name) })
		return err
	}
	before, _ := stStored(h, "alice")
	for _, name := range []string{"", strings.Repeat("a", MaxNameLen+1), strings.Repeat("é", 32) + "a", "a\x00b", "tab\there", "new\nline",
		"del\x7f", "c1\u0085", "ls\u2028", "\xff\xfe", "half\xc3"} {
		if err := rename(a, "alice", id, name); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Rename(%q): %v, want ErrInvalidInput", name, err)
		}
	}
	stSameRecord(h, "alice", before)
	// Another user's session, a logged-out browser, a pending login.
	bob, pending := newBrowser(), newBrowser()
	stLogin(h, bob, "bob", 0, false, false)
	stLogin(h, pending, "alice", 0, true, false)
	for name, b := range map[string]*browser{"bob": bob, "logged out": newBrowser(), "pending": pending} {
		if err := rename(b, "alice", id, "Stolen"); !errors.Is(err, session.ErrNotLoggedIn) {
			t.Errorf("Rename from %s: %v, want session.ErrNotLoggedIn", name, err)
		}
	}
	stSameRecord(h, "alice", before)
	if err := rename(a, "alice", encodeID([]byte("no such credential")), "X"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rename of an unknown ID: %v, want ErrNotFound", err)
	}
	if err := rename(bob, "bob", id, "Mine"); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob renaming alice's passkey: %v, want ErrNotFound", err)
	}
	long := strings.Repeat("é", 32) // 64 bytes
	if err := rename(a, "alice", id, long); err != nil {
		t.Fatalf("Rename to 64 bytes: %v", err)
	}
	if list, err := h.m.List(context.Background(), "alice"); err != nil || len(list) != 1 || list[0].Name != long {
		t.Fatalf("List after Rename: %+v, %v", list, err)
	}
}

// TestCanUnlockAfterRotation: a master-key rotation drops the passkey's
// slot (CanUnlock false, PRF still true); an unlock ceremony with the
// vault unlocked sets it up again, and then it unlocks.
func TestCanUnlockAfterRotation(t *testing.T) {
	h, _ := stRegistered(t, nil)
	ctx := context.Background()
	if _, _, err := h.vault.RotateMasterKey(ctx, "alice", []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	list, err := h.m.List(ctx, "alice")
	if err != nil || len(list) != 1 || !list[0].PRF || list[0].CanUnlock {
		t.Fatalf("List after rotation: %+v, %v", list, err)
	}
	// Unlocking with it is not offered now (its slot is gone).
	b := newBrowser()
	stLogin(h, b, "alice", 0, false, false)
	var berr error
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, berr = h.m.BeginUnlock(r) })
	if !errors.Is(berr, ErrNotSetUp) {
		t.Fatalf("BeginUnlock after rotation: %v, want ErrNotSetUp", berr)
	}
	stUnlockSession(h, b, "alice")
	res, err := h.unlockWith(b, 1, nil)
	if err != nil || !res.SetUp || !res.Credential.CanUnlock {
		t.Fatalf("set-up ceremony: %+v, %v", res, err)
	}
	if list, err := h.m.List(ctx, "alice"); err != nil || !list[0].CanUnlock {
		t.Fatalf("List after set-up: %+v, %v", list, err)
	}
	c := newBrowser()
	stLogin(h, c, "alice", 0, false, false)
	if res, err := h.unlockWith(c, 2, nil); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("salt B's output: %+v, %v, want ErrUnlockFailed", res, err)
	}
}

// TestRegisterWithVaultLocked: a passkey registered while the session's
// vault is locked gets no slot; the first unlock ceremony with the vault
// unlocked adds it, then it unlocks.
func TestRegisterWithVaultLocked(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if _, err := h.vault.Create(ctx, "alice", []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, false)
	cred, err := h.register(a, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !cred.PRF || cred.CanUnlock {
		t.Fatalf("registered with the vault locked: %+v", cred)
	}
	slots, err := h.vault.Slots(ctx, "alice")
	if err != nil || slices.ContainsFunc(slots, func(s vault.SlotInfo) bool { return s.Kind == vault.SlotSecret }) {
		t.Fatalf("slots %+v, %v: want no secret slot", slots, err)
	}
	if list, err := h.m.List(ctx, "alice"); err != nil || !list[0].PRF || list[0].CanUnlock {
		t.Fatalf("List: %+v, %v", list, err)
	}
	// Unlocking with it: no slot yet.
	var berr error
	h.do(a, func(w http.ResponseWriter, r *http.Request) { _, berr = h.m.BeginUnlock(r) })
	if !errors.Is(berr, ErrNotSetUp) {
		t.Fatalf("BeginUnlock before set-up: %v, want ErrNotSetUp", berr)
	}
	stUnlockSession(h, a, "alice")
	res, err := h.unlockWith(a, 1, nil)
	if err != nil || !res.SetUp {
		t.Fatalf("set-up: %+v, %v", res, err)
	}
	if list, err := h.m.List(ctx, "alice"); err != nil || !list[0].CanUnlock {
		t.Fatalf("List after set-up: %+v, %v", list, err)
	}
	h.do(a, func(w http.ResponseWriter, r *http.Request) { _ = h.sessions.Lock(r.Context()) })
	if res, err := h.unlockWith(a, 2, nil); !errors.Is(err, ErrUnlockFailed) {
		// Salt B: its output is not the slot's.
		t.Fatalf("salt B: %+v, %v", res, err)
	}
}

// TestPasskeyWithoutPRF: a passkey whose browser returned no PRF result
// registers and logs in, cannot unlock, and an unlock with only such
// passkeys is ErrPRFUnavailable.
func TestPasskeyWithoutPRF(t *testing.T) {
	h := newHarness(t, nil)
	// The signature does not cover client extension results.
	h.cer.Registration.Response.ClientExtensionResults.PRF = nil
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	cred, err := h.register(a, "Key")
	if err != nil {
		t.Fatal(err)
	}
	if cred.PRF || cred.CanUnlock {
		t.Fatalf("registered %+v, want PRF and CanUnlock false", cred)
	}
	_, rec := stStored(h, "alice")
	if rec.creds[0].has(flagPRF) || rec.creds[0].prfSalt != nil {
		t.Fatal("stored a PRF flag or salt for a passkey without PRF")
	}
	if slots, err := h.vault.Slots(context.Background(), "alice"); err != nil ||
		slices.ContainsFunc(slots, func(s vault.SlotInfo) bool { return s.Kind == vault.SlotSecret }) {
		t.Fatalf("slots %+v, %v: want no secret slot", slots, err)
	}
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); err != nil {
		t.Fatalf("login: %v", err)
	}
	if list, err := h.m.List(context.Background(), "alice"); err != nil || list[0].PRF || list[0].CanUnlock || list[0].SignCount != 2 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	var uerr error
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, uerr = h.m.BeginUnlock(r) })
	if !errors.Is(uerr, ErrPRFUnavailable) {
		t.Fatalf("BeginUnlock with no PRF passkey: %v, want ErrPRFUnavailable", uerr)
	}
}

// TestLoginOptionsRevealNoAccount: BeginLogin's options are the same,
// but for the challenge, whoever asks: logged out, logged in as a user
// with passkeys, or as one without (PKY-16).
func TestLoginOptionsRevealNoAccount(t *testing.T) {
	h, a := stRegistered(t, nil)
	bob := newBrowser()
	stLogin(h, bob, "bob", 0, false, false)
	p := newBrowser()
	if _, err := h.loginWith(p, 0, nil); err != nil {
		t.Fatal(err)
	}
	var want []byte
	var challenges []string
	for name, b := range map[string]*browser{"logged out": newBrowser(), "logged out 2": newBrowser(), "alice": a, "alice by passkey": p, "bob": bob} {
		var opts []byte
		var err error
		h.do(b, func(w http.ResponseWriter, r *http.Request) { opts, err = h.m.BeginLogin(w, r) })
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			PublicKey map[string]any `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &v); err != nil {
			t.Fatal(err)
		}
		ch, _ := v.PublicKey["challenge"].(string)
		if len(ch) < 22 { // 16 bytes at least
			t.Fatalf("%s: challenge %q", name, ch)
		}
		if ac, ok := v.PublicKey["allowCredentials"]; ok && !(ac == nil || len(ac.([]any)) == 0) {
			t.Fatalf("%s: allowCredentials %v", name, ac)
		}
		challenges = append(challenges, ch)
		shape := bytes.Replace(opts, []byte(ch), []byte("CHALLENGE"), 1)
		if want == nil {
			want = shape
		} else if !bytes.Equal(shape, want) || len(opts) != len(want)-len("CHALLENGE")+len(ch) {
			t.Fatalf("%s: options\n%s\nwant (but for the challenge)\n%s", name, shape, want)
		}
	}
	for _, secret := range []string{"alice", "bob", encodeID(h.cer.Registration.Response.RawID), encodeID(h.cer.Registration.UserID)} {
		if bytes.Contains(want, []byte(secret)) {
			t.Fatalf("options name %q: %s", secret, want)
		}
	}
	slices.Sort(challenges)
	if len(slices.Compact(challenges)) != 5 {
		t.Fatal("a challenge repeated")
	}
}

// TestLoginLockout: bad assertions count on Config.Lockout for the user;
// once locked, even a genuine assertion gets ErrLoginFailed, runs the
// dummy check instead of the real one, and changes nothing; the lock ends
// with its time.
func TestLoginLockout(t *testing.T) {
	h := newHarness(t, nil)
	// A Manager with a 3-failure lockout on the same stores.
	l, err := ratelimit.NewLockout(h.store, ratelimit.LockoutOptions{Name: "passkey-strict",
		Policy: ratelimit.LockoutPolicy{MaxFailures: 3, LockFor: time.Minute}, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.m.cfg
	cfg.Lockout = l
	if h.m, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	h.lockout = l
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatal(err)
	}
	dummies := stCountDummy(h)
	for i := range 3 {
		if _, err := h.loginWith(newBrowser(), 0, stTamperSig(h, 0)); !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("bad assertion %d: %v", i, err)
		}
	}
	if n := dummies.Load(); n != 0 {
		t.Fatalf("the dummy check ran %d times for wrong signatures of a known credential", n)
	}
	before, _ := stStored(h, "alice")
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("genuine assertion on a locked account: %v, want ErrLoginFailed", err)
	}
	if h.current(b).UserID != "" {
		t.Fatal("a locked account logged in")
	}
	if dummies.Load() == 0 {
		t.Fatal("the locked attempt did not run the dummy check")
	}
	stSameRecord(h, "alice", before)
	if lines := stLogLines(h, "authn_passkey_login_fail"); len(lines) == 0 || lines[len(lines)-1]["locked"] != true {
		t.Fatalf("login_fail lines %v, want the last locked", lines)
	}
	h.clock.Advance(time.Minute + time.Second)
	if _, err := h.loginWith(b, 0, nil); err != nil || h.current(b).UserID != "alice" {
		t.Fatalf("after the lock: %v", err)
	}
}

// TestLockoutSharedWithOtherWays: a lock caused by another way in (wrong
// passwords counted on the same Lockout) refuses a genuine passkey too.
func TestLockoutSharedWithOtherWays(t *testing.T) {
	h, _ := stRegistered(t, nil)
	max := h.lockout.Policy().MaxFailures
	for range max {
		err := h.lockout.Check(context.Background(), "alice", ratelimit.Source{}, ratelimit.Credential{
			Verify: func(context.Context) error { return ratelimit.ErrWrongCredential },
			Dummy:  func(context.Context) error { return nil },
		})
		if !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatal(err)
		}
	}
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); !errors.Is(err, ErrLoginFailed) || h.current(b).UserID != "" {
		t.Fatalf("passkey login on an account locked by passwords: %v", err)
	}
	// Unlock attempts count there too.
	s := newBrowser()
	stLogin(h, s, "alice", 0, false, false)
	if _, err := h.unlockWith(s, 1, nil); !errors.Is(err, ErrUnlockFailed) || h.current(s).Unlocked {
		t.Fatalf("passkey unlock on a locked account: %v", err)
	}
}

// TestUnknownUserHandle: an assertion whose user handle no one has is
// ErrLoginFailed after the dummy check.
func TestUnknownUserHandle(t *testing.T) {
	h := newHarness(t, nil)
	dummies := stCountDummy(h)
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); !errors.Is(err, ErrLoginFailed) || h.current(b).UserID != "" {
		t.Fatalf("unknown user handle: %v, want ErrLoginFailed", err)
	}
	if dummies.Load() == 0 {
		t.Fatal("no dummy check for an unknown user handle")
	}
	// A user handle of the wrong length, or none.
	for _, handle := range [][]byte{nil, []byte("short")} {
		a := h.cer.Assertions[0].Response
		a.Response.UserHandle = handle
		if _, err := h.loginWith(b, 0, mustJSON(t, a)); !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("user handle %q: %v, want ErrLoginFailed", handle, err)
		}
	}
	// Alice registered: another user's handle on her credential fails.
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatal(err)
	}
	before, _ := stStored(h, "alice")
	bad := h.cer.Assertions[0].Response
	bad.Response.UserHandle = bytes.Repeat([]byte{7}, storage.PasskeyHandleLen)
	if _, err := h.loginWith(b, 0, mustJSON(t, bad)); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("unknown 64-byte handle: %v, want ErrLoginFailed", err)
	}
	stSameRecord(h, "alice", before)
}

// TestDelete: account deletion removes the record and both indexes; the
// passkey no longer logs in.
func TestDelete(t *testing.T) {
	h, _ := stRegistered(t, nil)
	ctx := context.Background()
	_, rec := stStored(h, "alice")
	// Alice's lockout counters are locked; deletion forgets them.
	for range h.lockout.Policy().MaxFailures {
		_ = h.lockout.Check(ctx, "alice", ratelimit.Source{}, ratelimit.Credential{
			Verify: func(context.Context) error { return ratelimit.ErrWrongCredential },
			Dummy:  func(context.Context) error { return nil },
		})
	}
	if err := h.m.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.GetPasskeys(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetPasskeys after Delete: %v", err)
	}
	if _, err := h.store.UserByHandle(ctx, rec.handle); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UserByHandle after Delete: %v", err)
	}
	if _, err := h.store.UserByCredential(ctx, rec.creds[0].id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UserByCredential after Delete: %v", err)
	}
	if has, err := h.m.Has(ctx, "alice"); err != nil || has {
		t.Fatalf("Has after Delete: %v, %v", has, err)
	}
	if list, err := h.m.List(ctx, "alice"); err != nil || len(list) != 0 {
		t.Fatalf("List after Delete: %v, %v", list, err)
	}
	if _, err := h.loginWith(newBrowser(), 0, nil); !errors.Is(err, ErrLoginFailed) {
		t.Fatalf("login after Delete: %v", err)
	}
	admitted := false
	if err := h.lockout.Check(ctx, "alice", ratelimit.Source{}, ratelimit.Credential{
		Verify: func(context.Context) error { admitted = true; return nil },
		Dummy:  func(context.Context) error { return nil },
	}); err != nil || !admitted {
		t.Fatalf("lockout after Delete: %v (admitted %v), want the counters forgotten", err, admitted)
	}
	if err := h.m.Delete(ctx, "alice"); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if err := h.m.Delete(ctx, ""); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Delete(\"\"): %v", err)
	}
}

// TestSignCountPolicySoft runs the sign-count policy over the counters
// and backup eligibility only the soft authenticator can give (PKY-08):
// stored 10 and new 10 is refused for a hardware key (BE=0) and accepted,
// flagged, for a synced passkey (BE=1) under the default policy; 0/0
// passes unflagged; RejectAlways refuses and FlagOnly accepts whatever
// BE is. A refused or flagged assertion leaves the stored counter.
func TestSignCountPolicySoft(t *testing.T) {
	for _, tc := range []struct {
		name          string
		policy        SignCountPolicy
		be            bool
		stored, count uint32
		refused, flag bool
	}{
		{"default BE=0 10/10", RejectUnlessSynced, false, 10, 10, true, false},
		{"default BE=0 10/9", RejectUnlessSynced, false, 10, 9, true, false},
		{"default BE=0 10/11", RejectUnlessSynced, false, 10, 11, false, false},
		{"default BE=0 0/0", RejectUnlessSynced, false, 0, 0, false, false},
		{"default BE=0 5/0", RejectUnlessSynced, false, 5, 0, true, false},
		{"default BE=1 10/10", RejectUnlessSynced, true, 10, 10, false, true},
		{"default BE=1 0/0", RejectUnlessSynced, true, 0, 0, false, false},
		{"RejectAlways BE=1 10/10", RejectAlways, true, 10, 10, true, false},
		{"RejectAlways BE=0 0/0", RejectAlways, false, 0, 0, false, false},
		{"RejectAlways BE=1 0/7", RejectAlways, true, 0, 7, false, false},
		{"FlagOnly BE=0 10/10", FlagOnly, false, 10, 10, false, true},
		{"FlagOnly BE=1 10/3", FlagOnly, true, 10, 3, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSoftEnv(t, func(c *Config) { c.SignCountPolicy = tc.policy })
			s.auth.BE = tc.be
			alice := newBrowser()
			s.harness.login(alice, "alice", true)
			c := s.mustRegister(alice)
			stEdit(s.harness, "alice", func(c *credential) { c.signCount = tc.stored })
			before, _ := stStored(s.harness, "alice")
			b := newBrowser()
			res, err := s.login(b, c, func(a *softAnswer) { a.SignCount = tc.count })
			clone := tc.refused || tc.flag
			if tc.refused {
				if !errors.Is(err, ErrLoginFailed) || !errors.Is(err, ErrPossibleClone) {
					t.Fatalf("%v, want ErrLoginFailed and ErrPossibleClone", err)
				}
				if s.current(b).UserID != "" {
					t.Fatal("a refused login has a session")
				}
				stSameRecord(s.harness, "alice", before)
			} else {
				if err != nil {
					t.Fatalf("%v, want accepted", err)
				}
				if res.ClonedCounter != tc.flag || res.Credential.CloneWarning != tc.flag || s.current(b).UserID != "alice" {
					t.Fatalf("result %+v, want flagged %v", res, tc.flag)
				}
				_, rec := stStored(s.harness, "alice")
				want := tc.count
				if tc.flag {
					want = tc.stored // a counter that did not grow is not stored
				}
				if cr := rec.creds[0]; cr.signCount != want || cr.has(flagCloneWarning) != tc.flag || cr.lastUsed.IsZero() {
					t.Fatalf("stored count %d flags %#x, want count %d flagged %v", cr.signCount, cr.flags, want, tc.flag)
				}
			}
			if got := stHasEvent(s.harness, keyhold.PasskeyCloneWarning); got != clone {
				t.Errorf("PasskeyCloneWarning event %v, want %v", got, clone)
			}
			lines := stLogLines(s.harness, "authn_passkey_clone_warning")
			if clone != (len(lines) == 1) || (clone && lines[0]["refused"] != tc.refused) {
				t.Errorf("clone warning log %v", lines)
			}
		})
	}
}

// TestBackupStateChange: a synced passkey whose backup state changes
// (BS 0→1, then 1→0) still logs in, and the latest state is stored
// (PKY-06).
func TestBackupStateChange(t *testing.T) {
	s := newSoftEnv(t, nil)
	s.auth.BE = true
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
	c := s.mustRegister(alice)
	if _, rec := stStored(s.harness, "alice"); rec.creds[0].has(flagBackupState) || !rec.creds[0].has(flagBackupEligible) {
		t.Fatalf("registered flags %#x", rec.creds[0].flags)
	}
	for _, bs := range []bool{true, false, true} {
		b := newBrowser()
		res, err := s.login(b, c, func(a *softAnswer) {
			if bs {
				a.Flags |= protocol.FlagBackupState
			} else {
				a.Flags &^= protocol.FlagBackupState
			}
		})
		if err != nil || s.current(b).UserID != "alice" {
			t.Fatalf("BS=%v: %v", bs, err)
		}
		_, rec := stStored(s.harness, "alice")
		if rec.creds[0].has(flagBackupState) != bs || res.Credential.BackedUp != bs || rec.creds[0].signCount != c.SignCount {
			t.Fatalf("BS=%v: stored flags %#x count %d, result %+v", bs, rec.creds[0].flags, rec.creds[0].signCount, res.Credential)
		}
		if list, err := s.m.List(context.Background(), "alice"); err != nil || list[0].BackedUp != bs || !list[0].BackupEligible {
			t.Fatalf("List: %+v, %v", list, err)
		}
	}
}

// TestPasskeyWithoutPRFSoft: a passkey whose authenticator has no PRF
// (no prf in the client extension results at all) registers with the
// vault unlocked and logs in, cannot unlock, and an unlock ceremony with
// only such passkeys is ErrPRFUnavailable; with a PRF passkey beside it,
// only that one is offered.
func TestPasskeyWithoutPRFSoft(t *testing.T) {
	s := newSoftEnv(t, nil)
	alice := newBrowser()
	s.harness.login(alice, "alice", true)
	noPRF := func(a *softAnswer) { delete(a.Extensions, "prf") }
	c, cred, err := s.register(alice, noPRF)
	if err != nil {
		t.Fatal(err)
	}
	if cred.PRF || cred.CanUnlock {
		t.Fatalf("registered %+v", cred)
	}
	b := newBrowser()
	if _, err := s.login(b, c, nil); err != nil {
		t.Fatal(err)
	}
	var uerr error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { _, uerr = s.m.BeginUnlock(r) })
	if !errors.Is(uerr, ErrPRFUnavailable) {
		t.Fatalf("BeginUnlock: %v, want ErrPRFUnavailable", uerr)
	}
	// PRF "enabled" without results at registration: PRF, no slot yet.
	c2, cred2, err := s.register(b, func(a *softAnswer) { a.Extensions["prf"] = map[string]any{"enabled": true} })
	if err != nil || !cred2.PRF || cred2.CanUnlock {
		t.Fatalf("enabled without results: %+v, %v", cred2, err)
	}
	// With the vault locked, no passkey can unlock it yet.
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { _, uerr = s.m.BeginUnlock(r) })
	if !errors.Is(uerr, ErrNotSetUp) {
		t.Fatalf("BeginUnlock, vault locked, no slot yet: %v, want ErrNotSetUp", uerr)
	}
	// With the vault unlocked (the passphrase), setting up offers only
	// the PRF passkey.
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) {
		u, err := s.harness.vault.Unlock(r.Context(), "alice", []byte(testPassphrase))
		if err == nil {
			err = s.harness.sessions.Unlock(r.Context(), u)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	opts := s.beginUnlock(b)
	if bytes.Contains(opts, []byte(b64(c.ID))) || !bytes.Contains(opts, []byte(b64(c2.ID))) {
		t.Fatalf("unlock options %s: want only the PRF passkey", opts)
	}
	list, err := s.m.List(context.Background(), "alice")
	if err != nil || len(list) != 2 || list[0].PRF || list[0].CanUnlock || !list[1].PRF || list[1].CanUnlock {
		t.Fatalf("List: %+v, %v", list, err)
	}
}

// TestEnrolled: Manager.Enrolled answers as Has (no record, a passkey,
// the last one removed), and a Manager is a SecondFactors.
func TestEnrolled(t *testing.T) {
	var _ SecondFactors = (*Manager)(nil)
	s := newSoftEnv(t, nil)
	ctx := context.Background()
	enrolled := func() bool {
		t.Helper()
		e, err := s.m.Enrolled(ctx, "alice")
		has, herr := s.m.Has(ctx, "alice")
		if err != nil || herr != nil || e != has {
			t.Fatalf("Enrolled %v, %v; Has %v, %v", e, err, has, herr)
		}
		return e
	}
	if enrolled() {
		t.Fatal("Enrolled without a record")
	}
	b := newBrowser()
	stLogin(s.harness, b, "alice", 0, false, false)
	c := s.mustRegister(b)
	if !enrolled() {
		t.Fatal("not Enrolled with a passkey")
	}
	if _, err := s.login(b, c, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	s.doTLS(b, func(w http.ResponseWriter, r *http.Request) { err = s.m.Remove(r, "alice", b64(c.ID)) })
	if err != nil {
		t.Fatal(err)
	}
	if enrolled() {
		t.Fatal("Enrolled after the last passkey was removed (its record stays, emptied)")
	}
}
