package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// TestRecordedFlow replays the recorded browser ceremonies through the
// package: a registration with the vault unlocked (the PRF output at
// registration becomes the passkey's vault slot), a usernameless login,
// then an unlock with the PRF output.
func TestRecordedFlow(t *testing.T) {
	h := newHarness(t, nil)
	alice := newBrowser()
	h.login(alice, "alice", true)
	cred, err := h.register(alice, "Laptop")
	if err != nil {
		t.Fatalf("FinishRegistration: %v\n%s", err, h.logs)
	}
	if !cred.PRF || !cred.CanUnlock || cred.Name != "Laptop" || cred.SignCount != 1 {
		t.Fatalf("registered %+v", cred)
	}
	if got := h.events.kinds(); len(got) == 0 || got[len(got)-1] != keyhold.PasskeyAdded {
		t.Errorf("events %v, want PasskeyAdded last", got)
	}

	phone := newBrowser()
	res, err := h.loginWith(phone, 0, nil)
	if err != nil {
		t.Fatalf("FinishLogin: %v\n%s", err, h.logs)
	}
	info := h.current(phone)
	if res.UserID != "alice" || info.UserID != "alice" || !info.MultiFactor || !info.Factors.Has(session.FactorPasskey) || info.Unlocked {
		t.Fatalf("login %+v, session %+v", res, info)
	}
	un, err := h.unlockWith(phone, 1, nil)
	if err != nil {
		t.Fatalf("FinishUnlock: %v\n%s", err, h.logs)
	}
	if un.SetUp || !h.current(phone).Unlocked {
		t.Fatalf("unlock %+v, session not unlocked", un)
	}
	// Assertion 2 used salt B: its output opens no slot.
	h.do(phone, func(w http.ResponseWriter, r *http.Request) { _ = h.sessions.Lock(r.Context()) })
	if _, err := h.unlockWith(phone, 2, nil); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("unlock with another salt's output: %v, want ErrUnlockFailed", err)
	}
}

// PKY-13 (partial): the attestation policy is explicit and fixed at
// "none": the options ask for none, and the registered passkey keeps
// the format it came with ("none" from the recorded chromium).
func TestAttestationNone(t *testing.T) {
	h := newHarness(t, nil)
	alice := newBrowser()
	h.login(alice, "alice", false)
	var options []byte
	h.do(alice, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if options, err = h.m.BeginRegistration(r, "alice@example.test"); err != nil {
			t.Fatal(err)
		}
	})
	var o struct {
		PublicKey struct {
			Attestation string `json:"attestation"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Attestation != "none" {
		t.Fatalf("registration options ask for attestation %q (%v), want \"none\"", o.PublicKey.Attestation, err)
	}
	cred, err := h.register(alice, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	if cred.AttestationFormat != "none" {
		t.Fatalf("stored attestation format %q, want none", cred.AttestationFormat)
	}
}

// A right unlock assertion with a passkey that has no vault slot yet
// (registered with the vault locked) answers ErrNotSetUp and is not
// counted by the lockout: the owner cannot lock themselves out by trying
// it, as they could when it counted as a wrong credential.
func TestUnlockWithoutSlotIsNotCounted(t *testing.T) {
	// The one recorded answer is replayed: its counter stops growing
	// after the first, which FlagOnly lets through.
	h := newHarness(t, func(c *Config) { c.SignCountPolicy = FlagOnly })
	ctx := context.Background()
	if _, err := h.vault.Create(ctx, "alice", []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	a := newBrowser()
	h.login(a, "alice", false)
	if cred, err := h.register(a, "Laptop"); err != nil || cred.CanUnlock {
		t.Fatalf("register with the vault locked: %+v, %v", cred, err)
	}
	b := newBrowser()
	if _, err := h.loginWith(b, 0, nil); err != nil {
		t.Fatal(err)
	}
	info := h.current(b)
	for try := range 12 { // more than the lockout's 10 failures per source
		// Begun with the vault unlocked (set-up offers the passkey), then
		// locked before the answer comes: the answer is right, the slot
		// missing.
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			u, err := h.vault.Unlock(r.Context(), "alice", []byte(testPassphrase))
			if err == nil {
				err = h.sessions.Unlock(r.Context(), u)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			if _, err := h.m.BeginUnlock(r); err != nil {
				t.Fatal(err)
			}
		})
		h.do(b, func(w http.ResponseWriter, r *http.Request) { _ = h.sessions.Lock(r.Context()) })
		h.rewrite(sessionChallengeID(ceremonyUnlock, info.UserID, info.Ref), ceremonyUnlock, info.UserID, info.Ref,
			h.cer.Assertions[1].Challenge, nil, nil)
		var err error
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			_, err = h.m.FinishUnlock(r, mustJSON(t, h.cer.Assertions[1].Response), ratelimit.Source{})
		})
		if !errors.Is(err, ErrNotSetUp) {
			t.Fatalf("try %d: %v, want ErrNotSetUp", try, err)
		}
	}
	att, err := h.lockout.Begin(ctx, "alice", ratelimit.Source{})
	if err != nil {
		t.Fatalf("after 12 unlocks of a passkey without a slot, the lockout: %v, want no failure counted", err)
	}
	att.Abandon(ctx, errors.New("test"))
}

// stepUpWith replays recorded assertion i as the step-up ceremony of b's
// session.
func (h *harness) stepUpWith(b *browser, i int, response []byte) (Credential, error) {
	h.t.Helper()
	info := h.current(b)
	var err error
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if _, err = h.m.BeginStepUp(r); err != nil {
			h.t.Fatalf("BeginStepUp: %v", err)
		}
	})
	h.rewrite(sessionChallengeID(ceremonyStepUp, info.UserID, info.Ref), ceremonyStepUp, info.UserID, info.Ref, h.cer.Assertions[i].Challenge, nil, nil)
	if response == nil {
		response = mustJSON(h.t, h.cer.Assertions[i].Response)
	}
	var cred Credential
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		cred, err = h.m.FinishStepUp(r, response, ratelimit.Source{})
	})
	return cred, err
}

// A passkey step-up makes a password session multi-factor and fresh,
// keeps its user and its unlocked vault, and lets it add another passkey
// (which a password-only session of a user with a passkey cannot).
func TestStepUp(t *testing.T) {
	h := newHarness(t, nil)
	a := newBrowser()
	h.login(a, "alice", true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser()
	h.login(b, "alice", true)
	h.clock.Advance(DefaultStepUpMaxAge + time.Minute)
	var err error
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, err = h.m.BeginRegistration(r, "alice@example.test") })
	if !errors.Is(err, ErrStepUpRequired) {
		t.Fatalf("a stale password session adds a passkey: %v, want ErrStepUpRequired", err)
	}
	before := h.current(b)
	cred, err := h.stepUpWith(b, 0, nil)
	if err != nil {
		t.Fatalf("FinishStepUp: %v\n%s", err, h.logs)
	}
	after := h.current(b)
	if cred.Name != "Laptop" || after.UserID != "alice" || !after.MultiFactor || !after.Unlocked ||
		after.Factors != session.FactorPassword|session.FactorPasskey || !after.AuthTime.After(before.AuthTime) || after.Ref != before.Ref {
		t.Fatalf("after the step-up: %+v (before %+v), credential %+v", after, before, cred)
	}
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, err = h.m.BeginRegistration(r, "alice@example.test") })
	if err != nil {
		t.Fatalf("after the step-up, adding a passkey: %v", err)
	}
	// The challenge is used up: the same answer again finds no ceremony.
	info := h.current(b)
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		_, err = h.m.FinishStepUp(r, mustJSON(t, h.cer.Assertions[1].Response), ratelimit.Source{})
	})
	if !errors.Is(err, ErrChallenge) || h.current(b).Ref != info.Ref {
		t.Fatalf("a step-up without its ceremony: %v, want ErrChallenge", err)
	}
}

// A login pending its second factor is completed by a passkey step-up;
// three refused answers end it, as three wrong TOTP codes do.
func TestStepUpAsSecondFactor(t *testing.T) {
	h := newHarness(t, nil)
	a := newBrowser()
	h.login(a, "alice", true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatal(err)
	}
	pending := func() *browser {
		b := newBrowser()
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			if err := h.sessions.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
				t.Fatal(err)
			}
		})
		return b
	}
	b := pending()
	if _, err := h.stepUpWith(b, 0, nil); err != nil {
		t.Fatalf("FinishStepUp on a pending login: %v", err)
	}
	if info := h.current(b); info.SecondFactorPending || !info.MultiFactor || info.Factors != session.FactorPassword|session.FactorPasskey {
		t.Fatalf("after the passkey as second factor: %+v", info)
	}

	c := pending()
	bad := h.cer.Assertions[1].Response
	bad.Response.Signature = append([]byte(nil), bad.Response.Signature...)
	bad.Response.Signature[len(bad.Response.Signature)-1] ^= 1
	var err error
	for try := 1; try <= 3; try++ {
		_, err = h.stepUpWith(c, 1, mustJSON(t, bad))
		if !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("try %d with a bad signature: %v, want ErrLoginFailed", try, err)
		}
	}
	if !errors.Is(err, session.ErrTooManySecondFactorFailures) {
		t.Fatalf("third refusal: %v, want session.ErrTooManySecondFactorFailures too", err)
	}
	if _, ok := func() (session.Info, bool) {
		var info session.Info
		var ok bool
		h.do(c, func(w http.ResponseWriter, r *http.Request) { info, ok = h.sessions.Current(r.Context()) })
		return info, ok
	}(); ok {
		t.Fatal("the pending login outlived three refused passkey answers")
	}
}
